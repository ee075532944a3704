"""A synthetic ELBv2 endpoint for fleets too large to build in the emulator: N load balancers and
T target groups generated from their indices, answered in the ELBv2 2015-12-01 XML that moto
returns (the element names were matched against moto's answers for one load balancer with a
listener, a rule, a target group and tags).

Load balancer `i` (0 <= i < N) is `lb-{i:06d}`, an internal application load balancer with two
tags, one HTTP listener on port 80 forwarding to target group `i` (when i < T), and one rule
(priority 10, path `/v10/*`) beside the default rule. Target group `j` is `lb-{j:06d}-tg` (HTTP,
port 8080, health check on `/health`), used by load balancer `j` when j < N. Nothing is stored
per item: every answer is built from the indices the request names, which are part of the ARNs.
`record(i)` is the state-table record of load balancer `i`, in sync with what is served.

Answered: DescribeLoadBalancers (pages by Marker and PageSize up to 400, or by Names or
LoadBalancerArns), DescribeTargetGroups (pages, or by TargetGroupArns, Names or LoadBalancerArn),
DescribeListeners, DescribeRules, DescribeTags (up to 20 ARNs), DescribeLoadBalancerAttributes
and DescribeTargetGroupAttributes. Any other action gets an error. Served on 127.0.0.1 only; put
a `FaultProxy(moto.endpoint, elb_upstream=synthetic.endpoint)` in front of it to count calls,
throttle a share of them, and send everything else (DynamoDB, STS) to moto.
"""

import threading
import time
import urllib.parse
from collections import Counter
from xml.sax.saxutils import escape

from lbrecon_harness.faultproxy import ELB_NAMESPACE, elb_error
from lbrecon_harness.loopback import Loopback, send

ACCOUNT = "123456789012"
VPC = "vpc-0a1b2c3d"
SUBNETS = (("us-east-1a", "subnet-0a1b2c3d"), ("us-east-1b", "subnet-1a2b3c4d"))
MAX_PAGE = 400
CREATED = "2026-01-01T00:00:00.000Z"


def lb_name(i):
    return f"lb-{i:06d}"


def tg_name(j):
    return f"lb-{j:06d}-tg"


def _id(i):
    return f"{i:016x}"


class SyntheticFleet:
    """The fleet's shape and its ARNs, in one region."""

    def __init__(self, load_balancers, target_groups, region="us-east-1"):
        self.n = load_balancers
        self.t = target_groups
        self.region = region
        self.prefix = f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:"

    # ARNs carry the index as the id, so any ARN maps back to it.
    def lb_arn(self, i):
        return f"{self.prefix}loadbalancer/app/{lb_name(i)}/{_id(i)}"

    def tg_arn(self, j):
        return f"{self.prefix}targetgroup/{tg_name(j)}/{_id(j)}"

    def listener_arn(self, i):
        return f"{self.prefix}listener/app/{lb_name(i)}/{_id(i)}/{_id(i)}"

    def rule_arn(self, i, k):
        return f"{self.prefix}listener-rule/app/{lb_name(i)}/{_id(i)}/{_id(i)}/{k:016x}"

    def index_of(self, arn, kind):
        """The index in an ARN of `kind` (`loadbalancer`, `targetgroup`, `listener`), or None
        when it names nothing in the fleet."""
        if not arn.startswith(self.prefix + kind + "/"):
            return None
        parts = arn[len(self.prefix):].split("/")
        try:
            i = int(parts[3] if kind != "targetgroup" else parts[2], 16)
        except (IndexError, ValueError):
            return None
        limit = self.t if kind == "targetgroup" else self.n
        return i if 0 <= i < limit else None

    def index_of_name(self, name, kind):
        try:
            if kind == "targetgroup":
                if not name.endswith("-tg"):
                    return None
                name = name[: -len("-tg")]
            i = int(name[len("lb-"):]) if name.startswith("lb-") else None
        except ValueError:
            return None
        limit = self.t if kind == "targetgroup" else self.n
        return i if i is not None and 0 <= i < limit else None

    def tags(self, i):
        return {"team": f"team-{i % 20}", "service": lb_name(i)}

    def record(self, i):
        """The state-table record (`config`) of load balancer `i`, matching what is served."""
        name = lb_name(i)
        record = {"name": name, "type": "application", "scheme": "internal", "tags": self.tags(i)}
        if i < self.t:
            tg = tg_name(i)
            record["listeners"] = [{
                "port": 80, "protocol": "HTTP",
                "default_actions": [{"type": "forward", "target_group": tg}],
                "rules": [{"priority": 10, "conditions": [{"field": "path-pattern", "values": ["/v10/*"]}],
                           "actions": [{"type": "forward", "target_group": tg}]}],
            }]
            record["target_groups"] = [{"name": tg, "protocol": "HTTP", "port": 8080,
                                        "health_check": {"path": "/health"}}]
        return record

    # --- XML members, moto's element names ---------------------------------------------------

    def lb_member(self, i):
        name = lb_name(i)
        zones = "".join(f"<member><ZoneName>{zone}</ZoneName><SubnetId>{subnet}</SubnetId></member>"
                        for zone, subnet in SUBNETS)
        return (f"<member><LoadBalancerArn>{self.lb_arn(i)}</LoadBalancerArn>"
                f"<DNSName>{name}-{i}.{self.region}.elb.amazonaws.com</DNSName>"
                f"<CanonicalHostedZoneId>Z35SXDOTRQ7X7K</CanonicalHostedZoneId>"
                f"<CreatedTime>{CREATED}</CreatedTime><LoadBalancerName>{name}</LoadBalancerName>"
                f"<Scheme>internal</Scheme><VpcId>{VPC}</VpcId><State><Code>active</Code></State>"
                f"<Type>application</Type><AvailabilityZones>{zones}</AvailabilityZones>"
                f"<SecurityGroups/>"
                f"<IpAddressType>ipv4</IpAddressType></member>")

    def tg_member(self, j):
        lbs = f"<member>{self.lb_arn(j)}</member>" if j < self.n else ""
        return (f"<member><TargetGroupArn>{self.tg_arn(j)}</TargetGroupArn>"
                f"<TargetGroupName>{tg_name(j)}</TargetGroupName><Protocol>HTTP</Protocol>"
                f"<ProtocolVersion>HTTP1</ProtocolVersion><Port>8080</Port><VpcId>{VPC}</VpcId>"
                f"<HealthCheckEnabled>true</HealthCheckEnabled><HealthCheckProtocol>HTTP</HealthCheckProtocol>"
                f"<HealthCheckPort>traffic-port</HealthCheckPort><HealthCheckPath>/health</HealthCheckPath>"
                f"<HealthCheckIntervalSeconds>30</HealthCheckIntervalSeconds>"
                f"<HealthCheckTimeoutSeconds>5</HealthCheckTimeoutSeconds>"
                f"<HealthyThresholdCount>5</HealthyThresholdCount>"
                f"<UnhealthyThresholdCount>2</UnhealthyThresholdCount>"
                f"<Matcher><HttpCode>200</HttpCode></Matcher><TargetType>instance</TargetType>"
                f"<IpAddressType>ipv4</IpAddressType>"
                f"<LoadBalancerArns>{lbs}</LoadBalancerArns></member>")

    def forward(self, i):
        return f"<member><Type>forward</Type><TargetGroupArn>{self.tg_arn(i)}</TargetGroupArn></member>"

    def listener_member(self, i):
        actions = self.forward(i) if i < self.t else (
            "<member><Type>fixed-response</Type><FixedResponseConfig><StatusCode>404</StatusCode>"
            "<ContentType>text/plain</ContentType></FixedResponseConfig></member>")
        return (f"<member><ListenerArn>{self.listener_arn(i)}</ListenerArn>"
                f"<LoadBalancerArn>{self.lb_arn(i)}</LoadBalancerArn><Port>80</Port><Protocol>HTTP</Protocol>"
                f"<DefaultActions>{actions}</DefaultActions><AlpnPolicy/></member>")

    def rule_members(self, i):
        if i >= self.t:
            return ""
        default = (f"<member><IsDefault>true</IsDefault><Conditions/><Priority>default</Priority>"
                   f"<Actions>{self.forward(i)}</Actions><RuleArn>{self.rule_arn(i, 0)}</RuleArn></member>")
        rule = (f"<member><IsDefault>false</IsDefault><Conditions><member><Field>path-pattern</Field>"
                f"<Values><member>/v10/*</member></Values></member>"
                f"</Conditions><Priority>10</Priority><Actions>{self.forward(i)}</Actions>"
                f"<RuleArn>{self.rule_arn(i, 1)}</RuleArn></member>")
        return default + rule


# The attributes moto gives a new application load balancer and target group.
LB_ATTRIBUTES = (("access_logs.s3.bucket", ""), ("access_logs.s3.prefix", ""),
                 ("deletion_protection.enabled", "false"), ("load_balancing.cross_zone.enabled", "false"))
TG_ATTRIBUTES = (("deregistration_delay.timeout_seconds", "300"), ("stickiness.enabled", "false"),
                 ("load_balancing.algorithm.type", "round_robin"),
                 ("load_balancing.cross_zone.enabled", "use_load_balancer_configuration"),
                 ("slow_start.duration_seconds", "0"), ("waf.fail_open.enabled", "false"),
                 ("stickiness.type", "lb_cookie"))


def _members(form, name):
    """The values of `Name.member.1`, `Name.member.2`, ... in order."""
    found = []
    k = 1
    while f"{name}.member.{k}" in form:
        found.append(form[f"{name}.member.{k}"])
        k += 1
    return found


def _answer(action, result):
    body = (f'<{action}Response xmlns="{ELB_NAMESPACE}"><{action}Result>{result}</{action}Result>'
            f"<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId>"
            f"</ResponseMetadata></{action}Response>")
    return 200, "text/xml", body.encode()


def _attributes(pairs):
    return "<Attributes>" + "".join(f"<member><Key>{k}</Key><Value>{v}</Value></member>" for k, v in pairs) \
        + "</Attributes>"


class SyntheticElb:
    """The endpoint, in a thread of this process; `stop()` ends it. `counts` holds the
    operations it answered (`Counter`); `pages`, (monotonic time, action, first page?, last
    page?) of every paged `DescribeLoadBalancers` and `DescribeTargetGroups` answer, so a
    presence pass can be timed from its first page to its last."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.counts = Counter()
        self.pages = []
        self.lock = threading.Lock()
        self.loopback = Loopback(self._handle)
        self.endpoint = self.loopback.endpoint

    def _handle(self, request):
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length).decode() if length else ""
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        send(request, self.answer(form))

    def stop(self):
        self.loopback.stop()

    def reset(self):
        with self.lock:
            self.counts.clear()
            self.pages.clear()

    def answer(self, form):
        """(status, content type, body) of one request's form."""
        action = form.get("Action", "")
        with self.lock:
            self.counts[action] += 1
        handler = getattr(self, f"_{action}", None)
        if handler is None:
            return elb_error(400, "InvalidAction", f"{escape(action)} is not served by the synthetic endpoint")
        return handler(form)

    def _page(self, form, count):
        """(range of indices, next marker or None) of a paged call."""
        size = min(int(form.get("PageSize", MAX_PAGE)), MAX_PAGE)
        start = int(form.get("Marker") or 0)
        end = min(start + size, count)
        with self.lock:
            self.pages.append((time.monotonic(), form["Action"], start == 0, end >= count))
        return range(start, end), (str(end) if end < count else None)

    @staticmethod
    def _marker(next_marker):
        return f"<NextMarker>{next_marker}</NextMarker>" if next_marker else ""

    def _DescribeLoadBalancers(self, form):
        f = self.fleet
        names, arns = _members(form, "Names"), _members(form, "LoadBalancerArns")
        if names or arns:
            found = [f.index_of_name(n, "loadbalancer") for n in names] + [f.index_of(a, "loadbalancer") for a in arns]
            if None in found:
                return elb_error(400, "LoadBalancerNotFound", "One or more load balancers not found")
            indices, next_marker = found, None
        else:
            indices, next_marker = self._page(form, f.n)
        members = "".join(f.lb_member(i) for i in indices)
        return _answer("DescribeLoadBalancers", f"<LoadBalancers>{members}</LoadBalancers>{self._marker(next_marker)}")

    def _DescribeTargetGroups(self, form):
        f = self.fleet
        names, arns = _members(form, "Names"), _members(form, "TargetGroupArns")
        next_marker = None
        if names or arns:
            indices = [f.index_of_name(n, "targetgroup") for n in names] + [f.index_of(a, "targetgroup") for a in arns]
            if None in indices:
                return elb_error(400, "TargetGroupNotFound", "One or more target groups not found")
        elif "LoadBalancerArn" in form:
            i = f.index_of(form["LoadBalancerArn"], "loadbalancer")
            if i is None:
                return elb_error(400, "LoadBalancerNotFound", "One or more load balancers not found")
            indices = [i] if i < f.t else []
        else:
            indices, next_marker = self._page(form, f.t)
        members = "".join(f.tg_member(j) for j in indices)
        return _answer("DescribeTargetGroups", f"<TargetGroups>{members}</TargetGroups>{self._marker(next_marker)}")

    def _DescribeListeners(self, form):
        f = self.fleet
        if "LoadBalancerArn" in form:
            i = f.index_of(form["LoadBalancerArn"], "loadbalancer")
        else:
            arns = _members(form, "ListenerArns")
            i = f.index_of(arns[0], "listener") if arns else None
        if i is None:
            return elb_error(400, "LoadBalancerNotFound", "One or more load balancers not found")
        return _answer("DescribeListeners", f"<Listeners>{f.listener_member(i)}</Listeners>")

    def _DescribeRules(self, form):
        i = self.fleet.index_of(form.get("ListenerArn", ""), "listener")
        if i is None:
            return elb_error(400, "ListenerNotFound", "One or more listeners not found")
        return _answer("DescribeRules", f"<Rules>{self.fleet.rule_members(i)}</Rules>")

    def _DescribeTags(self, form):
        f = self.fleet
        arns = _members(form, "ResourceArns")
        if len(arns) > 20:
            return elb_error(400, "ValidationError", "A maximum of 20 resources can be described")
        descriptions = []
        for arn in arns:
            if ":targetgroup/" in arn:
                j = f.index_of(arn, "targetgroup")
                if j is None:
                    return elb_error(400, "TargetGroupNotFound", f"Target groups '[{escape(arn)}]' not found")
                tags = {"service": lb_name(j)}
            else:
                i = f.index_of(arn, "loadbalancer")
                if i is None:
                    return elb_error(400, "LoadBalancerNotFound", f"Load balancers '[{escape(arn)}]' not found")
                tags = f.tags(i)
            pairs = "".join(f"<member><Key>{k}</Key><Value>{v}</Value></member>" for k, v in tags.items())
            descriptions.append(f"<member><ResourceArn>{arn}</ResourceArn><Tags>{pairs}</Tags></member>")
        return _answer("DescribeTags", f"<TagDescriptions>{''.join(descriptions)}</TagDescriptions>")

    def _DescribeLoadBalancerAttributes(self, form):
        if self.fleet.index_of(form.get("LoadBalancerArn", ""), "loadbalancer") is None:
            return elb_error(400, "LoadBalancerNotFound", "One or more load balancers not found")
        return _answer("DescribeLoadBalancerAttributes", _attributes(LB_ATTRIBUTES))

    def _DescribeTargetGroupAttributes(self, form):
        if self.fleet.index_of(form.get("TargetGroupArn", ""), "targetgroup") is None:
            return elb_error(400, "TargetGroupNotFound", "One or more target groups not found")
        return _answer("DescribeTargetGroupAttributes", _attributes(TG_ATTRIBUTES))
