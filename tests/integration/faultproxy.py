"""A fault-injecting HTTP proxy for the tests: it sits on loopback between lbrecon and the
emulator, counts every AWS operation it forwards, and answers chosen requests with a fault in
the protocol's own format instead of forwarding them.

Operations are named as the APIs name them: the `Action` of an ELBv2 or Auto Scaling query
request (`DescribeLoadBalancers`), or the `X-Amz-Target` of a DynamoDB request (`Scan`).
"""

import http.client
import http.server
import json
import socket
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass

THROTTLE = "throttle"
SERVER_ERROR = "500"
UNAVAILABLE = "503"
ACCESS_DENIED = "access_denied"
DELAY = "delay"
RESET = "reset"
TRUNCATE = "truncate"


@dataclass
class Fault:
    operation: str
    kind: str
    times: int = 1
    after: int = 0
    delay: float = 0.0
    seen: int = 0


def s3_operation(method, path):
    """The S3 operation of a path-style REST request (`/bucket/key?query`)."""
    parsed = urllib.parse.urlsplit(path)
    key = parsed.path.lstrip("/").partition("/")[2]
    query = urllib.parse.parse_qs(parsed.query)
    if not key:
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, method)
    return {"GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject", "HEAD": "HeadObject"}.get(method, method)


def operation_of(headers, body, method="POST", path="/"):
    target = headers.get("X-Amz-Target")
    if target:
        service, _, operation = target.partition(".")
        return ("dynamodb" if service.startswith("DynamoDB") else service.lower()), operation
    if body:
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        except ValueError:
            form = {}
        if "Action" in form:
            version = form.get("Version", [""])[0]
            service = {"2011-01-01": "autoscaling", "2011-06-15": "sts"}.get(version, "elasticloadbalancing")
            return service, form["Action"][0]
    if method != "POST" or path.split("?")[0] != "/":
        return "s3", s3_operation(method, path)
    return "other", headers.get("Host", "")


def app_of(headers):
    """The command an lbrecon request came from (`AWS_SDK_UA_APP_ID`), or None for a request
    not sent by lbrecon."""
    agent = " ".join(headers.get(name, "") for name in ("x-amz-user-agent", "User-Agent"))
    if "aws-sdk-rust" not in agent:
        return None
    for part in agent.split():
        if part.startswith("app/"):
            return part[len("app/"):]
    return "unknown"


def tables_of(service, operation, body):
    """The DynamoDB tables a request names: `TableName`, or each item's of a transaction."""
    if service != "dynamodb" or not body:
        return []
    try:
        request = json.loads(body)
    except ValueError:
        return []
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [
            (kind, action.get("TableName", ""))
            for item in request.get("TransactItems", [])
            for kind, action in item.items()
        ]
    return [(operation, request.get("TableName", ""))]


def fault_response(service, kind):
    """(status, content type, body) of a fault in the service's own protocol."""
    if service == "dynamodb":
        if kind == THROTTLE:
            return 400, "application/x-amz-json-1.0", (
                b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}'
            )
        if kind == "provisioned":
            return 400, "application/x-amz-json-1.0", (
                b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}'
            )
        if kind == ACCESS_DENIED:
            return 400, "application/x-amz-json-1.0", (
                b'{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User is not authorized to perform this action"}'
            )
        status = int(kind)
        return status, "application/x-amz-json-1.0", b'{"__type":"com.amazon.coral.service#InternalFailure","message":"injected"}'
    code, status = {
        THROTTLE: ("Throttling", 400),
        ACCESS_DENIED: ("AccessDenied", 403),
        SERVER_ERROR: ("InternalFailure", 500),
        UNAVAILABLE: ("ServiceUnavailable", 503),
    }[kind]
    body = (
        '<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>injected {code}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return status, "text/xml", body.encode()


class FaultProxy:
    """Runs in a thread of the test process; `stop()` ends it."""

    def __init__(self, upstream, record=None):
        """`record`: a Counter that gets (app, service, operation, table) of every request
        lbrecon sends through this proxy (the suite's record of what lbrecon calls)."""
        self.record = record
        parsed = urllib.parse.urlparse(upstream)
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port
        self.counts = Counter()
        # (operation, table) of DynamoDB requests; a transaction's items as (Put, table), ...
        self.tables = Counter()
        self.requests = []
        self.faults = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                proxy.handle(self)

            do_GET = do_POST
            do_PUT = do_POST
            do_DELETE = do_POST
            do_HEAD = do_POST

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def fail(self, operation, kind, times=1, after=0, delay=0.0):
        """The next `times` requests of `operation`, after `after` of them passed, get `kind`."""
        with self.lock:
            self.faults.append(Fault(operation, kind, times, after, delay))

    def clear(self):
        with self.lock:
            self.faults.clear()

    def reset_counts(self):
        with self.lock:
            self.counts.clear()
            self.tables.clear()
            self.requests.clear()

    def times(self, service):
        """When each request of `service` arrived (monotonic seconds)."""
        with self.lock:
            return [t for t, s, _ in self.requests if s == service]

    def operations(self):
        with self.lock:
            return dict(self.counts)

    def table_operations(self):
        """{(operation, table): count} of the DynamoDB requests."""
        with self.lock:
            return dict(self.tables)

    def _fault_for(self, operation):
        with self.lock:
            for fault in self.faults:
                if fault.operation not in (operation, "*"):
                    continue
                fault.seen += 1
                if fault.after < fault.seen <= fault.after + fault.times:
                    return fault
        return None

    def handle(self, request):
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        service, operation = operation_of(request.headers, body, request.command, request.path)
        tables = tables_of(service, operation, body)
        with self.lock:
            self.counts[(service, operation)] += 1
            self.tables.update(tables)
            app = app_of(request.headers) if self.record is not None else None
            if app is not None:
                if tables:
                    self.record.update((app, service, op, table) for op, table in tables)
                else:
                    self.record[(app, service, operation, "")] += 1
            self.requests.append((time.monotonic(), service, operation))
        fault = self._fault_for(operation)
        if fault is not None:
            if fault.kind == DELAY:
                time.sleep(fault.delay)
            elif fault.kind == RESET:
                request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                request.connection.close()
                request.close_connection = True
                return
            elif fault.kind != TRUNCATE:
                status, content_type, payload = fault_response(service, fault.kind)
                request.send_response(status)
                request.send_header("Content-Type", content_type)
                request.send_header("Content-Length", str(len(payload)))
                request.end_headers()
                request.wfile.write(payload)
                return
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "connection")}
        headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
        try:
            upstream.request(request.command, request.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
        except OSError:
            request.send_error(502)
            return
        finally:
            upstream.close()
        request.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if fault is not None and fault.kind == TRUNCATE:
            request.wfile.write(payload[: len(payload) // 2])
            request.wfile.flush()
            request.close_connection = True
            return
        request.wfile.write(payload)
