"""A small HTTP server on loopback, in a thread of the test process: what the fault proxy and
the synthetic ELBv2 endpoint are served by."""

import http.server
import threading


def send(request, answer):
    """Writes `answer`, (status, content type, payload bytes), to `request`."""
    status, content_type, payload = answer
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(payload)))
    request.end_headers()
    request.wfile.write(payload)


class Loopback:
    """Hands every request, whatever its method, to `handle(request)` (a
    `BaseHTTPRequestHandler`); `endpoint` is its URL; `stop()` ends it."""

    def __init__(self, handle):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without TCP_NODELAY each answer
            # waits out the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                handle(self)

            do_GET = do_POST
            do_PUT = do_POST
            do_DELETE = do_POST
            do_HEAD = do_POST

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
