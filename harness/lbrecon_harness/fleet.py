"""Builds load-balancer fleets in an AWS emulator and writes their records, the way an
operator's control plane would: the record holds the configuration that was asked for, written
independently of anything lbrecon reads or computes.

Used by the integration tests, the benchmarks (benches/) and the demo (scripts/demo.sh).
"""

import copy
import datetime
import time

import boto3

TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
SSL_POLICY = "ELBSecurityPolicy-2016-08"
STRICT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def clients(endpoint, region):
    kw = dict(endpoint_url=endpoint, region_name=region, **TEST_CREDENTIALS)
    return {
        "ec2": boto3.client("ec2", **kw),
        "elbv2": boto3.client("elbv2", **kw),
        "acm": boto3.client("acm", **kw),
        "dynamodb": boto3.client("dynamodb", **kw),
        "dynamodb_resource": boto3.resource("dynamodb", **kw),
        "autoscaling": boto3.client("autoscaling", **kw),
    }


def create_state_table(endpoint, region, table, stream=False):
    """The state table as docs/architecture.md#state-table defines it: partition key `name` (S);
    with a `NEW_AND_OLD_IMAGES` stream where `stream` (docs/architecture.md#stream)."""
    c = clients(endpoint, region)
    c["dynamodb"].create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if stream:
        c["dynamodb"].update_table(
            TableName=table,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )


class Fleet:
    """A fleet in one region, with the record of every load balancer it created."""

    def __init__(self, endpoint, region="us-east-1"):
        self.endpoint = endpoint
        self.region = region
        self.c = clients(endpoint, region)
        self.elb = self.c["elbv2"]
        ec2 = self.c["ec2"]
        self.vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for i, zone in enumerate("ab", start=1)
        ]
        self.security_groups = [
            ec2.create_security_group(GroupName=f"lb-{i}", Description="load balancers", VpcId=self.vpc)["GroupId"]
            for i in range(2)
        ]
        self.certificate = self.c["acm"].request_certificate(DomainName="www.example.com")["CertificateArn"]
        self.records = {}
        self.arns = {}
        self.target_group_arns = {}

    # --- building -------------------------------------------------------------------------

    def _target_group(self, name, protocol="HTTP", port=8080, health=None, attributes=None, tags=None):
        health = health or {}
        args = dict(Name=name, Protocol=protocol, Port=port, VpcId=self.vpc, TargetType="instance")
        hc = {
            "enabled": True,
            "protocol": protocol if protocol in ("HTTP", "HTTPS") else "TCP",
            "port": "traffic-port",
            "interval_seconds": 30,
            "timeout_seconds": 5,
            "healthy_threshold_count": 5,
            "unhealthy_threshold_count": 2,
        }
        if protocol in ("HTTP", "HTTPS"):
            hc["path"] = health.get("path", "/health")
            hc["matcher"] = {"http_code": health.get("http_code", "200")}
            args.update(HealthCheckPath=hc["path"], Matcher={"HttpCode": hc["matcher"]["http_code"]})
        args.update(
            HealthCheckProtocol=hc["protocol"],
            HealthCheckPort=hc["port"],
            HealthCheckIntervalSeconds=hc["interval_seconds"],
            HealthCheckTimeoutSeconds=hc["timeout_seconds"],
            HealthyThresholdCount=hc["healthy_threshold_count"],
            UnhealthyThresholdCount=hc["unhealthy_threshold_count"],
        )
        if tags:
            args["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        arn = self.elb.create_target_group(**args)["TargetGroups"][0]["TargetGroupArn"]
        self.target_group_arns[name] = arn
        if attributes:
            self.elb.modify_target_group_attributes(
                TargetGroupArn=arn, Attributes=[{"Key": k, "Value": v} for k, v in attributes.items()]
            )
        record = {
            "name": name,
            "protocol": protocol,
            "port": port,
            "target_type": "instance",
            "vpc_id": self.vpc,
            "health_check": hc,
        }
        if attributes is not None:
            record["attributes"] = dict(attributes)
        if tags is not None:
            record["tags"] = dict(tags)
        return arn, record

    def alb(self, name):
        """An application load balancer with HTTPS and HTTP listeners, three rules using every
        condition type, a weighted forward, a fixed response, a redirect, two target groups with
        health checks, attributes and tags."""
        lb = self.elb.create_load_balancer(
            Name=name,
            Subnets=self.subnets,
            SecurityGroups=[self.security_groups[0]],
            Scheme="internet-facing",
            Type="application",
            IpAddressType="ipv4",
            Tags=[{"Key": "team", "Value": "edge"}, {"Key": "env", "Value": "prod"}],
        )["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        self.arns[name] = arn
        attributes = {"idle_timeout.timeout_seconds": "120", "deletion_protection.enabled": "false"}
        self.elb.modify_load_balancer_attributes(
            LoadBalancerArn=arn, Attributes=[{"Key": k, "Value": v} for k, v in attributes.items()]
        )
        api_arn, api = self._target_group(
            f"{name}-api", port=8080, attributes={"deregistration_delay.timeout_seconds": "30"}, tags={"svc": "api"}
        )
        web_arn, web = self._target_group(f"{name}-web", port=80, health={"path": "/", "http_code": "200-299"})
        https = self.elb.create_listener(
            LoadBalancerArn=arn,
            Protocol="HTTPS",
            Port=443,
            SslPolicy=SSL_POLICY,
            Certificates=[{"CertificateArn": self.certificate}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": web_arn}],
        )["Listeners"][0]["ListenerArn"]
        self.elb.create_listener(
            LoadBalancerArn=arn,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[
                {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}
            ],
        )
        self.elb.create_rule(
            ListenerArn=https,
            Priority=10,
            Conditions=[
                {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*", "/v1/*"]}},
                {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}},
            ],
            Actions=[{"Type": "forward", "TargetGroupArn": api_arn}],
        )
        self.elb.create_rule(
            ListenerArn=https,
            Priority=20,
            Conditions=[
                {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["canary"]}},
                {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "debug", "Value": "1"}]}},
            ],
            Actions=[
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "nope"},
                }
            ],
        )
        self.elb.create_rule(
            ListenerArn=https,
            Priority=30,
            Conditions=[
                {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET", "HEAD"]}},
                {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}},
            ],
            Actions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": api_arn, "Weight": 80},
                            {"TargetGroupArn": web_arn, "Weight": 20},
                        ]
                    },
                }
            ],
        )
        self.records[name] = {
            "name": name,
            "type": "application",
            "scheme": "internet-facing",
            "ip_address_type": "ipv4",
            "subnets": list(self.subnets),
            "security_groups": [self.security_groups[0]],
            "attributes": attributes,
            "tags": {"team": "edge", "env": "prod"},
            "listeners": [
                {
                    "port": 443,
                    "protocol": "HTTPS",
                    "ssl_policy": SSL_POLICY,
                    "certificates": [self.certificate],
                    "default_actions": [{"type": "forward", "target_group": web["name"]}],
                    "rules": [
                        {
                            "priority": 10,
                            "conditions": [
                                {"field": "path-pattern", "values": ["/api/*", "/v1/*"]},
                                {"field": "host-header", "host_header_config": {"values": ["api.example.com"]}},
                            ],
                            "actions": [{"type": "forward", "target_group": api["name"]}],
                        },
                        {
                            "priority": 20,
                            "conditions": [
                                {
                                    "field": "http-header",
                                    "http_header_config": {"http_header_name": "X-Env", "values": ["canary"]},
                                },
                                {
                                    "field": "query-string",
                                    "query_string_config": {"values": [{"key": "debug", "value": "1"}]},
                                },
                            ],
                            "actions": [
                                {
                                    "type": "fixed-response",
                                    "fixed_response_config": {
                                        "status_code": "404",
                                        "content_type": "text/plain",
                                        "message_body": "nope",
                                    },
                                }
                            ],
                        },
                        {
                            "priority": 30,
                            "conditions": [
                                {"field": "http-request-method", "http_request_method_config": {"values": ["GET", "HEAD"]}},
                                {"field": "source-ip", "source_ip_config": {"values": ["10.0.0.0/8"]}},
                            ],
                            "actions": [
                                {
                                    "type": "forward",
                                    "forward_config": {
                                        "target_groups": [
                                            {"target_group": api["name"], "weight": 80},
                                            {"target_group": web["name"], "weight": 20},
                                        ]
                                    },
                                }
                            ],
                        },
                    ],
                },
                {
                    "port": 80,
                    "protocol": "HTTP",
                    "default_actions": [
                        {
                            "type": "redirect",
                            "redirect_config": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
                        }
                    ],
                    "rules": [],
                },
            ],
            "target_groups": [api, web],
        }
        return self.records[name]

    def nlb(self, name):
        """A network load balancer with a TCP listener and a TCP target group."""
        lb = self.elb.create_load_balancer(
            Name=name, Subnets=[self.subnets[0]], Scheme="internal", Type="network", Tags=[{"Key": "team", "Value": "db"}]
        )["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        self.arns[name] = arn
        tg_arn, tg = self._target_group(f"{name}-tcp", protocol="TCP", port=5432, tags={})
        self.elb.create_listener(
            LoadBalancerArn=arn, Protocol="TCP", Port=5432, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}]
        )
        self.records[name] = {
            "name": name,
            "type": "network",
            "scheme": "internal",
            "subnets": [self.subnets[0]],
            "tags": {"team": "db"},
            "listeners": [
                {
                    "port": 5432,
                    "protocol": "TCP",
                    "default_actions": [{"type": "forward", "target_group": tg["name"]}],
                }
            ],
            "target_groups": [tg],
        }
        return self.records[name]

    def gwlb(self, name):
        """A gateway load balancer: one listener (which has no port, protocol or rules, so the
        document keys it `gateway`) forwarding to a GENEVE target group, with tags and an
        attribute."""
        lb = self.elb.create_load_balancer(
            Name=name, Subnets=[self.subnets[0]], Type="gateway", Tags=[{"Key": "team", "Value": "inspection"}]
        )["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        self.arns[name] = arn
        attributes = {"load_balancing.cross_zone.enabled": "true"}
        self.elb.modify_load_balancer_attributes(
            LoadBalancerArn=arn, Attributes=[{"Key": k, "Value": v} for k, v in attributes.items()]
        )
        tg_arn, tg = self._target_group(f"{name}-geneve", protocol="GENEVE", port=6081, tags={"svc": "firewall"})
        self.elb.create_listener(LoadBalancerArn=arn, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
        self.records[name] = {
            "name": name,
            "type": "gateway",
            "subnets": [self.subnets[0]],
            "attributes": attributes,
            "tags": {"team": "inspection"},
            "listeners": [{"default_actions": [{"type": "forward", "target_group": tg["name"]}]}],
            "target_groups": [tg],
        }
        return self.records[name]

    def bare(self, name, scheme="internal"):
        """A load balancer without listeners, recorded by its presence fields only: cheap, for
        large fleets."""
        lb = self.elb.create_load_balancer(Name=name, Subnets=self.subnets, Scheme=scheme, Type="application")[
            "LoadBalancers"
        ][0]
        self.arns[name] = lb["LoadBalancerArn"]
        self.records[name] = {"name": name, "type": "application", "scheme": scheme}
        return self.records[name]

    # --- records ----------------------------------------------------------------------------

    def item(self, name, version=1):
        return {
            "name": name,
            "config": copy.deepcopy(self.records[name]),
            "version": version,
            "updated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": "deploy-pipeline",
        }

    def write_records(self, table, names=None):
        t = self.c["dynamodb_resource"].Table(table)
        with t.batch_writer() as batch:
            for name in names if names is not None else self.records:
                batch.put_item(Item=self.item(name))

    def delete_record(self, table, name):
        self.c["dynamodb"].delete_item(TableName=table, Key={"name": {"S": name}})

    def put_raw_item(self, table, item):
        """Writes a low-level item (typed attribute values), for corrupt records."""
        self.c["dynamodb"].put_item(TableName=table, Item=item)

    # --- live lookups -----------------------------------------------------------------------

    def listener_arn(self, name, port):
        for listener in self.elb.describe_listeners(LoadBalancerArn=self.arns[name])["Listeners"]:
            if listener.get("Port") == port:
                return listener["ListenerArn"]
        raise KeyError(f"{name} has no listener on {port}")

    def rule_arn(self, name, port, priority):
        for rule in self.elb.describe_rules(ListenerArn=self.listener_arn(name, port))["Rules"]:
            if rule["Priority"] == str(priority):
                return rule["RuleArn"]
        raise KeyError(f"{name}:{port} has no rule {priority}")


def wait_for(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def add_web(fleet, name):
    """A small application load balancer: one HTTP listener forwarding to one target group,
    recorded in full. Returns the target group's ARN."""
    lb = fleet.elb.create_load_balancer(Name=name, Subnets=fleet.subnets, Scheme="internal", Type="application")[
        "LoadBalancers"
    ][0]
    fleet.arns[name] = lb["LoadBalancerArn"]
    tg_arn, tg = fleet._target_group(f"{name}-tg", port=8080)
    fleet.elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
    )
    fleet.records[name] = {
        "name": name,
        "type": "application",
        "scheme": "internal",
        "listeners": [{"port": 80, "protocol": "HTTP", "default_actions": [{"type": "forward", "target_group": tg["name"]}]}],
        "target_groups": [tg],
    }
    return tg_arn


def add_scaling_group(fleet, name, target_group_arns):
    """An Auto Scaling group attached to target groups."""
    autoscaling = fleet.c["autoscaling"]
    if not getattr(fleet, "launch_configuration", None):
        autoscaling.create_launch_configuration(
            LaunchConfigurationName="lbrecon-test", ImageId="ami-12c6146b", InstanceType="t2.micro"
        )
        fleet.launch_configuration = "lbrecon-test"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=fleet.launch_configuration,
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        VPCZoneIdentifier=fleet.subnets[0],
        TargetGroupARNs=list(target_group_arns),
    )


def suspended(fleet, group):
    groups = fleet.c["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return {p["ProcessName"] for p in groups[0]["SuspendedProcesses"]}


def control_item(fleet, table, target):
    """The control item as plain Python, or None."""
    from boto3.dynamodb.types import TypeDeserializer

    item = fleet.c["dynamodb"].get_item(TableName=table, Key={"target": {"S": target}}, ConsistentRead=True).get("Item")
    if item is None:
        return None
    deserializer = TypeDeserializer()
    return {k: deserializer.deserialize(v) for k, v in item.items()}


def table_items(fleet, table):
    items = []
    kwargs = {"TableName": table, "ConsistentRead": True}
    while True:
        page = fleet.c["dynamodb"].scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda item: item["name"]["S"])
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def live_snapshot(fleet):
    """Everything lbrecon may read of the fleet, to prove it changed nothing."""
    elb = fleet.elb
    lbs = elb.describe_load_balancers()["LoadBalancers"]
    state = {}
    for lb in lbs:
        arn = lb["LoadBalancerArn"]
        listeners = elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]
        state[lb["LoadBalancerName"]] = {
            "lb": {k: v for k, v in lb.items() if k != "State"},
            "listeners": listeners,
            "rules": [elb.describe_rules(ListenerArn=l["ListenerArn"])["Rules"] for l in listeners],
            "attributes": elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"],
        }
    state["target_groups"] = elb.describe_target_groups()["TargetGroups"]
    return state
