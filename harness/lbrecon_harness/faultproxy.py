"""A fault-injecting HTTP proxy for the tests: it sits on loopback between lbrecon and the
emulator, counts every AWS operation it forwards, and answers chosen requests with a fault in
the protocol's own format instead of forwarding them.

Operations are named as the APIs name them: the `Action` of an ELBv2 or Auto Scaling query
request (`DescribeLoadBalancers`), or the `X-Amz-Target` of a DynamoDB request (`Scan`).
"""

import http.client
import json
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass

from lbrecon_harness.loopback import Loopback, send

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
    """The DynamoDB tables a request names: `TableName` (or the table of `ResourceArn`), or each
    item's of a transaction."""
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
    # Resource-policy calls name the table by its ARN (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`).
    table = request.get("TableName") or request.get("ResourceArn", "").partition(":table/")[2].split("/")[0]
    return [(operation, table)]


ELB_NAMESPACE = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"


def elb_error(status, code, message):
    """(status, content type, body) of an ELBv2 error answer, in AWS's shape."""
    body = (
        f'<ErrorResponse xmlns="{ELB_NAMESPACE}">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return status, "text/xml", body.encode()


def fault_response(service, kind, faithful=False):
    """(status, content type, body) of a fault in the service's own protocol; `faithful`: with
    the exact codes and messages AWS answers."""
    if service == "dynamodb":
        if kind == THROTTLE and faithful:
            return 400, "application/x-amz-json-1.0", (
                b'{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}'
            )
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
    if faithful and kind == THROTTLE:
        return elb_error(status, code, "Rate exceeded")
    return elb_error(status, code, f"injected {code}")


# --- the AWS-faithful mode -------------------------------------------------------------------
#
# Where moto answers differently from AWS, the faithful mode rewrites moto's answer into AWS's
# (README, "Testing against AWS's answers", lists each difference and its source).

# Paginated ELBv2 calls moto answers in one page whatever `PageSize` says.
UNPAGED = {
    "DescribeTargetGroups": "TargetGroups",
    "DescribeListeners": "Listeners",
    "DescribeListenerCertificates": "Certificates",
}
FAITHFUL_MARKER = "faithful-"
# The ARN forms of load balancers by type: moto gives every type `app/`.
ARN_KIND = {"application": "app", "network": "net", "gateway": "gwy"}
ARN_PART = re.compile(r"(loadbalancer|listener|listener-rule)/(app|net|gwy)/([^/<\s\"']+)/([0-9a-f]+)")
MOTO_ARN = re.compile(r"(loadbalancer|listener|listener-rule)/app/([^/<\s\"']+)/([0-9a-f]+)")


def whole_seconds(payload):
    """A `GetRecords` answer with each record's `ApproximateCreationDateTime` rounded down to
    the second, as DynamoDB Streams gives it (moto gives the write's time to the microsecond)."""
    answer = json.loads(payload)
    for record in answer.get("Records", []):
        data = record.get("dynamodb", {})
        if isinstance(data.get("ApproximateCreationDateTime"), (int, float)):
            data["ApproximateCreationDateTime"] = int(data["ApproximateCreationDateTime"])
    return json.dumps(answer).encode()


def top_level_members(xml, list_tag):
    """(start, end, [member texts]) of the `<member>`s directly inside `<list_tag>`."""
    open_tag, close_tag = f"<{list_tag}>", f"</{list_tag}>"
    start = xml.find(open_tag)
    if start < 0:
        return None
    inner = start + len(open_tag)
    end = xml.find(close_tag, inner)
    members, depth, begin = [], 0, None
    for token in re.finditer(r"<member>|</member>", xml[inner:end]):
        if token.group() == "<member>":
            if depth == 0:
                begin = token.start()
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                members.append(xml[inner + begin : inner + token.end()])
    return inner, end, members


class FaultProxy:
    """Runs in a thread of the test process; `stop()` ends it."""

    def __init__(self, upstream, record=None, faithful=False, elb_upstream=None):
        """`record`: a Counter that gets (app, service, operation, table) of every request
        lbrecon sends through this proxy (the suite's record of what lbrecon calls).
        `faithful`: rewrite moto's answers where they differ from AWS's.
        `elb_upstream`: where ELBv2 requests go instead of `upstream` (a synthetic fleet's
        endpoint, `synthetic_elb.py`); everything else still goes to `upstream`."""
        self.record = record
        self.faithful = faithful
        elb = urllib.parse.urlparse(elb_upstream) if elb_upstream else None
        self.elb_upstream = (elb.hostname, elb.port) if elb else None
        # Load-balancer ids to their ARN kind (`net`, `gwy`, `app`), learnt from moto.
        self.lb_kinds = {}
        parsed = urllib.parse.urlparse(upstream)
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port
        self.counts = Counter()
        # (operation, table) of DynamoDB requests; a transaction's items as (Put, table), ...
        self.tables = Counter()
        self.requests = []
        self.faults = []
        self.hooks = []
        self.refused_items = {}
        # service -> [every, seen]: every `every`-th request of the service is throttled.
        self.throttled_shares = {}
        self.lock = threading.Lock()
        self.loopback = Loopback(self.handle)
        self.endpoint = self.loopback.endpoint

    def stop(self):
        self.loopback.stop()

    def fail(self, operation, kind, times=1, after=0, delay=0.0):
        """The next `times` requests of `operation`, after `after` of them passed, get `kind`."""
        with self.lock:
            self.faults.append(Fault(operation, kind, times, after, delay))

    def throttle_share(self, service, every):
        """Throttles one request in `every` of `service` (the `every`-th, the `2 * every`-th,
        ...), an account under pressure; `every=None` stops."""
        with self.lock:
            if every is None:
                self.throttled_shares.pop(service, None)
            else:
                self.throttled_shares[service] = [every, 0]

    def _throttled_share(self, service):
        with self.lock:
            share = self.throttled_shares.get(service)
            if share is None:
                return False
            share[1] += 1
            return share[1] % share[0] == 0

    def refuse_item(self, name, whole=True):
        """Every `TransactWriteItems` that would put an item of this `name` is refused: `whole`,
        with a `ValidationException` for the whole call, as DynamoDB refuses one for an item too
        large (the answer does not say which item); else cancelled, that item's reason
        `ValidationError` and the others' `None`."""
        with self.lock:
            self.refused_items[name] = whole

    def _refusal(self, service, operation, body):
        """The answer to a transaction that puts a refused item, or None."""
        if service != "dynamodb" or operation != "TransactWriteItems" or not self.refused_items:
            return None
        try:
            request = json.loads(body)
        except ValueError:
            return None
        names = [
            item.get("Put", {}).get("Item", {}).get("name", {}).get("S")
            for item in request.get("TransactItems", [])
        ]
        with self.lock:
            refused = {name: self.refused_items[name] for name in names if name in self.refused_items}
        if not refused:
            return None
        if any(refused.values()):
            return 400, "application/x-amz-json-1.0", (
                b'{"__type":"com.amazon.coral.validate#ValidationException",'
                b'"message":"Item size has exceeded the maximum allowed size"}'
            )
        reasons = [
            {"Code": "ValidationError", "Message": "One or more parameter values were invalid"}
            if name in refused
            else {"Code": "None"}
            for name in names
        ]
        codes = ", ".join(reason["Code"] for reason in reasons)
        return 400, "application/x-amz-json-1.0", json.dumps({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
            "CancellationReasons": reasons,
        }).encode()

    def before(self, operation, action):
        """Runs `action()` once, before the first request of `operation` is answered (a
        resource deleted between two of lbrecon's reads, say)."""
        with self.lock:
            self.hooks.append([operation, action])

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

    # --- faithful mode ---------------------------------------------------------------------

    def _upstream(self, headers, params):
        """Asks moto an ELBv2 question of the proxy's own (not counted, not recorded as
        lbrecon's): the form `params`, signed as the request `headers` were (moto takes the
        region from the credential scope)."""
        form = {"Version": "2015-12-01", **params}
        body = urllib.parse.urlencode(form).encode()
        send = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": headers.get("Authorization", ""),
            "X-Amz-Date": headers.get("X-Amz-Date", ""),
            "User-Agent": "lbrecon-faultproxy",
            "Host": f"{self.upstream_host}:{self.upstream_port}",
        }
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            connection.request("POST", "/", body=body, headers=send)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def _exists(self, headers, arn):
        if ":targetgroup/" in arn:
            status, _ = self._upstream(headers, {"Action": "DescribeTargetGroups", "TargetGroupArns.member.1": arn})
        else:
            status, _ = self._upstream(headers, {"Action": "DescribeLoadBalancers", "LoadBalancerArns.member.1": arn})
        return status == 200

    def _learn_kinds(self, headers):
        marker = None
        while True:
            params = {"Action": "DescribeLoadBalancers", "PageSize": "400"}
            if marker:
                params["Marker"] = marker
            status, xml = self._upstream(headers, params)
            if status != 200:
                return
            for member in top_level_members(xml, "LoadBalancers")[2]:
                arn = re.search(r"<LoadBalancerArn>([^<]+)</LoadBalancerArn>", member)
                kind = re.search(r"<Type>([^<]+)</Type>", member)
                if arn and kind:
                    self.lb_kinds[arn.group(1).rsplit("/", 1)[1]] = ARN_KIND.get(kind.group(1), "app")
            marker = re.search(r"<NextMarker>([^<]+)</NextMarker>", xml)
            if not marker:
                return
            marker = marker.group(1)

    def _kind_of(self, headers, lb_id):
        if lb_id not in self.lb_kinds:
            self._learn_kinds(headers)
        return self.lb_kinds.get(lb_id, "app")

    def _faithful_request(self, headers, operation, body):
        """An answer AWS would give in moto's place, or the body to forward (ARNs back in
        moto's form, a faithful page marker dropped) with the page asked for."""
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        # ARNs as AWS writes them (`net/`, `gwy/`) back to moto's `app/`.
        form = {
            key: [ARN_PART.sub(lambda m: f"{m.group(1)}/app/{m.group(3)}/{m.group(4)}", v) for v in values]
            for key, values in form.items()
        }
        if operation == "DescribeTags":
            # AWS fails the whole call when any one resource of it is gone.
            arns = [values[0] for key, values in sorted(form.items()) if key.startswith("ResourceArns.member.")]
            for arn in arns:
                if not self._exists(headers, arn):
                    if ":targetgroup/" in arn:
                        return ("answer", elb_error(400, "TargetGroupNotFound", f"Target groups '[{self._to_aws(headers, arn)}]' not found"))
                    return ("answer", elb_error(400, "LoadBalancerNotFound", f"Load balancers '[{self._to_aws(headers, arn)}]' not found"))
        if operation == "DescribeLoadBalancers":
            # By name, AWS fails the whole call when any one name is gone (moto answers the
            # others, or repeats an earlier match in its place).
            names = [values[0] for key, values in sorted(form.items()) if key.startswith("Names.member.")]
            for name in names:
                status, _ = self._upstream(headers, {"Action": "DescribeLoadBalancers", "Names.member.1": name})
                if status != 200:
                    return ("answer", elb_error(400, "LoadBalancerNotFound", f"Load balancers '[{name}]' not found"))
        if operation == "DescribeRules" and "ListenerArn" in form:
            # A gateway load balancer's listener has no rules: AWS answers ListenerNotFound.
            lb_id = form["ListenerArn"][0].rstrip("/").split("/")[-2]
            if self._kind_of(headers, lb_id) == "gwy":
                return ("answer", elb_error(400, "ListenerNotFound", "One or more listeners not found"))
        page = None
        if operation in UNPAGED and "PageSize" in form:
            size = int(form.pop("PageSize")[0])
            marker = form.pop("Marker", [""])[0]
            offset = int(marker[len(FAITHFUL_MARKER):]) if marker.startswith(FAITHFUL_MARKER) else 0
            page = (offset, size)
        return ("forward", urllib.parse.urlencode({k: v[0] for k, v in form.items()}).encode(), page)

    def _to_aws(self, headers, text):
        """`text` with every load-balancer, listener and rule ARN in AWS's form for its load
        balancer's type (listener and rule ARNs carry the load balancer's id first)."""
        return MOTO_ARN.sub(
            lambda m: f"{m.group(1)}/{self._kind_of(headers, m.group(3))}/{m.group(2)}/{m.group(3)}",
            text,
        )

    def _faithful_answer(self, headers, operation, payload, page):
        """moto's answer to an ELBv2 call, rewritten into AWS's."""
        xml = payload.decode()
        if page is not None:
            offset, size = page
            found = top_level_members(xml, UNPAGED[operation])
            if found is not None:
                inner, end, members = found
                xml = xml[:inner] + "".join(members[offset : offset + size]) + xml[end:]
                xml = re.sub(r"<NextMarker>[^<]*</NextMarker>", "", xml)
                if offset + size < len(members):
                    result = f"</{operation}Result>"
                    xml = xml.replace(result, f"<NextMarker>{FAITHFUL_MARKER}{offset + size}</NextMarker>{result}", 1)
        if operation in ("DescribeListeners", "CreateListener", "ModifyListener"):
            found = top_level_members(xml, "Listeners")
            if found is not None:
                inner, end, members = found
                rewritten = []
                for member in members:
                    protocol = re.search(r"<Protocol>([^<]*)</Protocol>", member)
                    protocol = protocol.group(1) if protocol else ""
                    # AWS names a security policy only for HTTPS and TLS listeners, and gives a
                    # gateway listener no protocol at all.
                    if protocol not in ("HTTPS", "TLS"):
                        member = re.sub(r"<SslPolicy>[^<]*</SslPolicy>", "", member)
                    member = member.replace("<Protocol></Protocol>", "").replace("<Protocol/>", "")
                    rewritten.append(member)
                xml = xml[:inner] + "".join(rewritten) + xml[end:]

        return self._to_aws(headers, xml).encode()



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
        with self.lock:
            due = [hook for hook in self.hooks if hook[0] == operation]
            self.hooks = [hook for hook in self.hooks if hook[0] != operation]
        for _, action in due:
            action()
        refusal = self._refusal(service, operation, body)
        if refusal is not None:
            send(request, refusal)
            return
        if self._throttled_share(service):
            send(request, fault_response(service, THROTTLE, self.faithful))
            return
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
                send(request, fault_response(service, fault.kind, self.faithful))
                return
        faithful = self.faithful and service == "elasticloadbalancing"
        page = None
        if faithful:
            rewritten = self._faithful_request(request.headers, operation, body)
            if rewritten[0] == "answer":
                send(request, rewritten[1])
                return
            _, body, page = rewritten
        host, port = self.upstream_host, self.upstream_port
        if self.elb_upstream is not None and service == "elasticloadbalancing":
            host, port = self.elb_upstream
        upstream = http.client.HTTPConnection(host, port, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        headers["Host"] = f"{host}:{port}"
        if body or "Content-Length" in request.headers:
            headers["Content-Length"] = str(len(body))
        try:
            upstream.request(request.command, request.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
        except OSError:
            request.send_error(502)
            return
        finally:
            upstream.close()
        if faithful:
            payload = self._faithful_answer(request.headers, operation, payload, page if response.status == 200 else None)
        if self.faithful and service == "dynamodb" and operation == "GetRecords" and response.status == 200:
            payload = whole_seconds(payload)
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
