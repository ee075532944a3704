"""`lbrecon check` against the moto server: in-sync fleets, every drift kind, exact change
paths, pagination, several targets, failed reads and exit codes."""

import copy

import pytest
from lbrecon_harness.config import FAST_AWS, target_config
from lbrecon_harness.faultproxy import FaultProxy
from lbrecon_harness.fleet import STRICT_SSL_POLICY, Fleet, add_web, create_state_table
from lbrecon_harness.lbrecon import Lbrecon

# docs/architecture.md#configuration's smallest useful config, as written.
MINIMAL_CONFIG = """
[daemon]
interval = "30s"

[http]
listen = "127.0.0.1:9477"

[[targets]]
name = "prod-use1"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"

[guard]
min_missing = 1
max_missing_ratio = 0.05

[[guard.pausers]]
type = "dynamodb_flag"

[snapshots]
dir = "/var/lib/lbrecon/snapshots"
"""

NO_CONTROL_TABLE = {"paused": False, "reason": "no control table (run lbrecon init)"}


def only_target(report):
    assert len(report["targets"]) == 1, report
    return report["targets"][0]


def by_name(target):
    return {lb["name"]: lb for lb in target["load_balancers"]}


@pytest.fixture
def fleet(moto):
    return Fleet(moto.endpoint)


# Every test here runs twice: against moto as it answers, and through the fault proxy's
# AWS-faithful mode, which rewrites moto's answers where they differ from AWS's (README,
# "Development"). Code that is right only for moto fails the second run. Tests where the
# faithful mode changes nothing they read (no AWS call, or only moto's own pagination and
# injected faults) run once, with `MOTO_ONLY`, to keep the suite short.
MOTO_ONLY = pytest.mark.parametrize("aws_mode", ["moto"])


@pytest.fixture(params=["moto", "faithful"])
def aws_mode(request):
    return request.param


@pytest.fixture
def proxy(moto, aws_mode):
    server = FaultProxy(moto.endpoint, faithful=aws_mode == "faithful")
    yield server
    server.stop()


@pytest.fixture
def lbrecon(moto, tmp_path, proxy, aws_mode):
    return Lbrecon(proxy.endpoint if aws_mode == "faithful" else moto.endpoint, tmp_path)


@pytest.fixture
def faithful(moto, tmp_path):
    """lbrecon behind the AWS-faithful proxy only: for behaviour moto cannot show at all."""
    server = FaultProxy(moto.endpoint, faithful=True)
    yield server, Lbrecon(server.endpoint, tmp_path)
    server.stop()


def test_an_in_sync_fleet_is_exit_0_with_an_empty_report(lbrecon, fleet):
    for i in range(10):
        fleet.alb(f"web-{i}")
    for i in range(2):
        fleet.nlb(f"db-{i}")
    # A gateway load balancer's listener has no rules: AWS answers DescribeRules on it with
    # ListenerNotFound, which must not read as a deleted listener.
    fleet.gwlb("gw-0")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    lbrecon.write_config(MINIMAL_CONFIG)

    _, report = lbrecon.check_json(expect=0)
    assert set(report) == {"generated_at", "targets"}
    assert report["generated_at"].endswith("Z") or "+" in report["generated_at"]
    target = only_target(report)
    assert target == {
        "target": "prod-use1",
        "complete": True,
        "error": None,
        "summary": {
            "live": 13,
            "recorded": 13,
            "in_sync": 13,
            "changed": 0,
            "missing_record": 0,
            "missing_live": 0,
            "invalid_record": 0,
            "out_of_scope": 0,
        },
        "load_balancers": [],
        "guard": NO_CONTROL_TABLE,
    }

    lbrecon.write_config(MINIMAL_CONFIG + FAST_AWS)
    table = lbrecon.run("check")
    assert table.returncode == 0, table.stderr
    assert "13 in sync" in table.stdout
    assert "no drift" in table.stdout


def test_every_drift_kind(lbrecon, fleet):
    for name in ("in-sync", "changed", "no-record", "not-live", "corrupt"):
        fleet.alb(name)
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    fleet.elb.modify_listener(ListenerArn=fleet.listener_arn("changed", 443), SslPolicy=STRICT_SSL_POLICY)
    fleet.delete_record("lb-state", "no-record")
    fleet.elb.delete_load_balancer(LoadBalancerArn=fleet.arns["not-live"])
    fleet.put_raw_item("lb-state", {"name": {"S": "corrupt"}, "config": {"S": "{not a map}"}, "version": {"N": "3"}})
    fleet.bare("unrecorded")
    lbrecon.write_config(MINIMAL_CONFIG)

    _, report = lbrecon.check_json(expect=2)
    target = only_target(report)
    assert target["complete"] is True
    assert target["summary"] == {
        "live": 5,
        "recorded": 4,
        "in_sync": 1,
        "changed": 1,
        "missing_record": 2,
        "missing_live": 1,
        "invalid_record": 1,
        "out_of_scope": 0,
    }
    assert [lb["name"] for lb in target["load_balancers"]] == ["changed", "corrupt", "no-record", "not-live", "unrecorded"]
    lbs = by_name(target)
    assert lbs["changed"] == {
        "name": "changed",
        "kind": "changed",
        "changes": [{"path": "/listeners/443/ssl_policy", "recorded": "ELBSecurityPolicy-2016-08", "live": STRICT_SSL_POLICY}],
    }
    assert lbs["no-record"] == {"name": "no-record", "kind": "missing_record", "changes": []}
    assert lbs["unrecorded"]["kind"] == "missing_record"
    assert lbs["not-live"] == {"name": "not-live", "kind": "missing_live", "changes": []}
    assert lbs["corrupt"]["kind"] == "invalid_record"
    assert lbs["corrupt"]["changes"] == []
    assert lbs["corrupt"]["reason"] == "config is of type S, not a map (M)"


def test_corrupt_records_are_invalid_never_a_crash(lbrecon, fleet):
    names = [f"bad-{i}" for i in range(7)]
    for name in names:
        fleet.bare(name)
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    raw = {
        "bad-0": {"name": {"S": "bad-0"}},
        "bad-1": {"name": {"S": "bad-1"}, "config": {"L": []}},
        "bad-2": {"name": {"S": "bad-2"}, "config": {"M": {"listeners": {"M": {}}}}},
        "bad-3": {"name": {"S": "bad-3"}, "config": {"M": {"listeners": {"L": [{"M": {"port": {"S": "443"}}}]}}}},
        "bad-4": {"name": {"S": "bad-4"}, "config": {"M": {"tags": {"M": {"team": {"N": "1"}}}}}},
        "bad-5": {"name": {"S": "bad-5"}, "config": {"M": {"subnets": {"B": b"\x00\x01"}}}},
        "bad-6": {"name": {"S": "bad-6"}, "config": {"M": {"target_groups": {"L": [{"M": {"port": {"N": "80"}}}]}}}},
    }
    for item in raw.values():
        fleet.put_raw_item("lb-state", item)
    # A valid record with an unknown field is read, with a warning.
    fleet.bare("extra")
    fleet.put_raw_item(
        "lb-state",
        {"name": {"S": "extra"}, "config": {"M": {"scheme": {"S": "internal"}, "owner_team": {"S": "x"}}}},
    )
    lbrecon.write_config(MINIMAL_CONFIG)
    _, report = lbrecon.check_json(expect=2)
    target = only_target(report)
    lbs = by_name(target)
    assert {name: lbs[name]["reason"] for name in names} == {
        "bad-0": "config is missing",
        "bad-1": "config is of type L, not a map (M)",
        "bad-2": "config.listeners: expected a list, found a map",
        "bad-3": "config.listeners[0].port: expected a number, found a string",
        "bad-4": "config.tags.team: expected a string, found a number",
        "bad-5": "config.subnets: binary data (B) has no place in a load-balancer document",
        "bad-6": "config.target_groups[0]: a target group needs a name",
    }
    assert "extra" not in lbs
    assert target["summary"]["invalid_record"] == 7
    assert target["summary"]["in_sync"] == 1


def mutate_and_expect(fleet):
    """Applies one change to each of a set of load balancers and returns the exact changes
    each should report."""
    elb = fleet.elb
    rec = fleet.records
    expected = {}

    def tg(lb, suffix):
        return fleet.target_group_arns[f"{lb}-{suffix}"]

    elb.modify_listener(ListenerArn=fleet.listener_arn("d-ssl", 443), SslPolicy=STRICT_SSL_POLICY)
    expected["d-ssl"] = [("/listeners/443/ssl_policy", "ELBSecurityPolicy-2016-08", STRICT_SSL_POLICY)]

    elb.modify_target_group(TargetGroupArn=tg("d-hc", "api"), HealthCheckPath="/ping")
    expected["d-hc"] = [("/target_groups/d-hc-api/health_check/path", "/health", "/ping")]

    elb.modify_target_group(TargetGroupArn=tg("d-matcher", "web"), Matcher={"HttpCode": "200"})
    expected["d-matcher"] = [("/target_groups/d-matcher-web/health_check/matcher/http_code", "200-299", "200")]

    elb.modify_target_group(TargetGroupArn=tg("d-interval", "api"), HealthCheckIntervalSeconds=10)
    expected["d-interval"] = [("/target_groups/d-interval-api/health_check/interval_seconds", 30, 10)]

    elb.modify_load_balancer_attributes(
        LoadBalancerArn=fleet.arns["d-attr"], Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "60"}]
    )
    expected["d-attr"] = [("/attributes/idle_timeout.timeout_seconds", "120", "60")]

    elb.modify_target_group_attributes(
        TargetGroupArn=tg("d-tgattr", "api"), Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}]
    )
    expected["d-tgattr"] = [("/target_groups/d-tgattr-api/attributes/deregistration_delay.timeout_seconds", "30", "300")]

    elb.remove_tags(ResourceArns=[fleet.arns["d-tag"]], TagKeys=["env"])
    elb.add_tags(ResourceArns=[fleet.arns["d-tag"]], Tags=[{"Key": "team", "Value": "payments"}])
    expected["d-tag"] = [("/tags/env", "prod", None), ("/tags/team", "edge", "payments")]

    elb.add_tags(ResourceArns=[tg("d-tgtag", "api")], Tags=[{"Key": "svc", "Value": "web"}])
    expected["d-tgtag"] = [("/target_groups/d-tgtag-api/tags/svc", "api", "web")]

    elb.set_security_groups(LoadBalancerArn=fleet.arns["d-sg"], SecurityGroups=fleet.security_groups)
    expected["d-sg"] = [("/security_groups", [fleet.security_groups[0]], sorted(fleet.security_groups))]

    new = elb.create_listener(
        LoadBalancerArn=fleet.arns["d-newlistener"],
        Protocol="HTTP",
        Port=8080,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"}}],
    )
    assert new
    expected["d-newlistener"] = [
        (
            "/listeners/8080",
            None,
            {
                "port": 8080,
                "protocol": "HTTP",
                "certificates": [],
                "default_actions": [
                    {"type": "fixed-response", "fixed_response_config": {"status_code": "503", "content_type": "text/plain"}}
                ],
                "rules": {},
            },
        )
    ]

    elb.delete_listener(ListenerArn=fleet.listener_arn("d-nolistener", 80))
    recorded_80 = copy.deepcopy(rec["d-nolistener"]["listeners"][1])
    recorded_80["rules"] = {}
    expected["d-nolistener"] = [("/listeners/80", recorded_80, None)]

    elb.modify_rule(
        RuleArn=fleet.rule_arn("d-action", 443, 10),
        Actions=[{"Type": "forward", "TargetGroupArn": tg("d-action", "web")}],
    )
    expected["d-action"] = [
        (
            "/listeners/443/rules/10/actions",
            [{"type": "forward", "target_group": "d-action-api"}],
            [{"type": "forward", "target_group": "d-action-web"}],
        )
    ]

    elb.modify_rule(
        RuleArn=fleet.rule_arn("d-cond", 443, 10),
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
    )
    expected["d-cond"] = [
        (
            "/listeners/443/rules/10/conditions",
            rec["d-cond"]["listeners"][0]["rules"][0]["conditions"],
            [{"field": "path-pattern", "values": ["/api/*"]}],
        )
    ]

    elb.delete_rule(RuleArn=fleet.rule_arn("d-norule", 443, 20))
    recorded_rule = copy.deepcopy(rec["d-norule"]["listeners"][0]["rules"][1])
    expected["d-norule"] = [("/listeners/443/rules/20", recorded_rule, None)]

    elb.create_rule(
        ListenerArn=fleet.listener_arn("d-newrule", 443),
        Priority=40,
        Conditions=[{"Field": "path-pattern", "Values": ["/admin"]}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "403"}}],
    )
    expected["d-newrule"] = [
        (
            "/listeners/443/rules/40",
            None,
            {
                "priority": 40,
                "conditions": [{"field": "path-pattern", "values": ["/admin"]}],
                "actions": [{"type": "fixed-response", "fixed_response_config": {"status_code": "403"}}],
            },
        )
    ]

    elb.modify_listener(
        ListenerArn=fleet.listener_arn("d-default", 443),
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg("d-default", "api")}],
    )
    expected["d-default"] = [
        (
            "/listeners/443/default_actions",
            [{"type": "forward", "target_group": "d-default-web"}],
            [{"type": "forward", "target_group": "d-default-api"}],
        )
    ]

    elb.modify_rule(
        RuleArn=fleet.rule_arn("d-weights", 443, 30),
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": tg("d-weights", "api"), "Weight": 50},
                        {"TargetGroupArn": tg("d-weights", "web"), "Weight": 50},
                    ]
                },
            }
        ],
    )
    expected["d-weights"] = [
        (
            "/listeners/443/rules/30/actions",
            rec["d-weights"]["listeners"][0]["rules"][2]["actions"],
            [
                {
                    "type": "forward",
                    "forward_config": {
                        "target_groups": [
                            {"target_group": "d-weights-api", "weight": 50},
                            {"target_group": "d-weights-web", "weight": 50},
                        ],
                        "target_group_stickiness_config": {"enabled": False},
                    },
                }
            ],
        )
    ]
    return expected


DRIFTED = [
    "d-ssl", "d-hc", "d-matcher", "d-interval", "d-attr", "d-tgattr", "d-tag", "d-tgtag", "d-sg",
    "d-newlistener", "d-nolistener", "d-action", "d-cond", "d-norule", "d-newrule", "d-default", "d-weights",
]


def test_each_change_is_reported_exactly(lbrecon, fleet):
    for name in DRIFTED + ["steady"]:
        fleet.alb(name)
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    expected = mutate_and_expect(fleet)
    lbrecon.write_config(MINIMAL_CONFIG + FAST_AWS)

    _, report = lbrecon.check_json(expect=2)
    target = only_target(report)
    lbs = by_name(target)
    assert sorted(lbs) == sorted(DRIFTED)
    for name, changes in expected.items():
        want = [{"path": p, "recorded": r, "live": l} for p, r, l in changes]
        assert lbs[name]["kind"] == "changed", name
        assert lbs[name]["changes"] == want, name
    assert target["summary"]["in_sync"] == 1
    assert target["summary"]["changed"] == len(DRIFTED)


def test_ignore_rules_drop_changes_before_counting(lbrecon, fleet):
    for name in ("ign-a", "ign-b"):
        fleet.alb(name)
        fleet.elb.remove_tags(ResourceArns=[fleet.arns[name]], TagKeys=["env"])
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    lbrecon.write_config(MINIMAL_CONFIG + '\n[[ignore]]\nload_balancers = "ign-a"\npaths = ["/tags/*"]\n')
    _, report = lbrecon.check_json(expect=2)
    target = only_target(report)
    assert [lb["name"] for lb in target["load_balancers"]] == ["ign-b"]
    assert target["summary"]["in_sync"] == 1


@MOTO_ONLY
def test_more_than_one_page_of_load_balancers(lbrecon, fleet, proxy):
    count = 450
    for i in range(count):
        fleet.bare(f"lb-{i:04d}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    fleet.delete_record("lb-state", "lb-0449")
    lbrecon.endpoint = proxy.endpoint
    lbrecon.write_config(MINIMAL_CONFIG + FAST_AWS)
    _, report = lbrecon.check_json(expect=2)
    # Pages of 400: two calls for 450 load balancers (moto honours PageSize here).
    assert proxy.operations()[("elasticloadbalancing", "DescribeLoadBalancers")] == 2
    target = only_target(report)
    assert target["complete"] is True
    assert target["summary"]["live"] == count
    assert target["summary"]["recorded"] == count - 1
    assert target["summary"]["in_sync"] == count - 1
    assert target["load_balancers"] == [{"name": "lb-0449", "kind": "missing_record", "changes": []}]


def test_two_targets_in_two_regions(lbrecon, moto):
    east = Fleet(moto.endpoint, "us-east-1")
    west = Fleet(moto.endpoint, "eu-west-1")
    east.alb("east-web")
    west.alb("west-web")
    west.nlb("west-db")
    create_state_table(moto.endpoint, "us-east-1", "lb-state")
    create_state_table(moto.endpoint, "eu-west-1", "lb-state")
    east.write_records("lb-state")
    west.write_records("lb-state")
    west.elb.modify_target_group(TargetGroupArn=west.target_group_arns["west-db-tcp"], HealthCheckIntervalSeconds=10)
    lbrecon.write_config(
        "[daemon]\ninterval = \"30s\"\n"
        + target_config("east", "us-east-1")
        + target_config("west", "eu-west-1")
        + FAST_AWS
    )
    code, report = lbrecon.check_json()
    assert code == 2
    targets = {t["target"]: t for t in report["targets"]}
    assert targets["east"]["summary"]["in_sync"] == 1
    assert targets["east"]["load_balancers"] == []
    assert targets["west"]["summary"]["live"] == 2
    assert by_name(targets["west"])["west-db"]["changes"] == [
        {"path": "/target_groups/west-db-tcp/health_check/interval_seconds", "recorded": 30, "live": 10}
    ]
    code, report = lbrecon.check_json("--target", "east")
    assert code == 0
    assert [t["target"] for t in report["targets"]] == ["east"]


@pytest.mark.parametrize(
    "operation,kind",
    [
        ("DescribeLoadBalancers", "throttle"),
        ("DescribeTargetGroups", "503"),
        ("Scan", "throttle"),
        ("Scan", "access_denied"),
    ],
)
def test_a_failed_presence_read_is_exit_1_and_reports_nothing_missing(lbrecon, fleet, proxy, operation, kind):
    for i in range(3):
        fleet.alb(f"web-{i}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    proxy.fail(operation, kind, times=100)
    lbrecon.endpoint = proxy.endpoint
    lbrecon.write_config(MINIMAL_CONFIG + "\n[aws]\nmax_attempts = 2\n")
    _, report = lbrecon.check_json(expect=1)
    target = only_target(report)
    assert target["complete"] is False
    assert target["error"].startswith(f"{operation} failed: "), target["error"]
    if operation == "Scan":
        assert target["error"].endswith("(for state table lb-state)"), target["error"]
    assert target["load_balancers"] == []
    for kind_name in ("in_sync", "changed", "missing_record", "missing_live", "invalid_record"):
        assert target["summary"][kind_name] == 0


@MOTO_ONLY
@pytest.mark.parametrize("operation", ["DescribeListeners", "DescribeRules", "DescribeTags", "DescribeTargetGroupAttributes"])
def test_a_failed_deep_read_is_exit_1_and_never_looks_in_sync(lbrecon, fleet, proxy, operation):
    for i in range(3):
        fleet.alb(f"web-{i}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    proxy.fail(operation, "500", times=100)
    lbrecon.endpoint = proxy.endpoint
    lbrecon.write_config(MINIMAL_CONFIG + "\n[aws]\nmax_attempts = 2\n")
    _, report = lbrecon.check_json(expect=1)
    target = only_target(report)
    assert target["complete"] is False
    assert operation in target["error"]
    assert target["summary"]["in_sync"] == 0
    assert target["summary"]["live"] == 3


def test_a_retried_throttle_leaves_the_check_complete(lbrecon, fleet, proxy):
    fleet.alb("web-0")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    proxy.fail("DescribeLoadBalancers", "throttle", times=1)
    proxy.fail("Scan", "throttle", times=1)
    lbrecon.endpoint = proxy.endpoint
    lbrecon.write_config(MINIMAL_CONFIG)
    _, report = lbrecon.check_json(expect=0)
    assert only_target(report)["complete"] is True
    assert proxy.operations()[("elasticloadbalancing", "DescribeLoadBalancers")] == 2


@MOTO_ONLY
def test_a_state_table_never_seen_is_a_configuration_error(lbrecon, fleet):
    fleet.bare("web-0")
    lbrecon.write_config(MINIMAL_CONFIG)
    result = lbrecon.run("check", "--format", "json")
    assert result.returncode == 78, result.stderr
    assert "lb-state" in result.stderr
    assert "does not exist" in result.stderr


@MOTO_ONLY
def test_usage_and_config_errors(lbrecon, tmp_path):
    assert lbrecon.run("check", "--format", "yaml").returncode == 64
    assert lbrecon.run("frobnicate").returncode == 64
    missing = lbrecon.run("check")
    assert missing.returncode == 78
    assert "lbrecon.toml" in missing.stderr

    lbrecon.write_config(MINIMAL_CONFIG.replace('interval = "30s"', 'interval = "30s"\nspeed = 1'))
    bad = lbrecon.run("validate")
    assert bad.returncode == 78
    assert "speed" in bad.stderr

    lbrecon.write_config(MINIMAL_CONFIG)
    assert lbrecon.run("check", "--target", "nope").returncode == 64
    ok = lbrecon.run("validate")
    assert ok.returncode == 0, ok.stderr
    assert "confirm_cycles = 2" in ok.stdout
    assert 'mass_loss_window = "1h"' in ok.stdout


def test_targets_and_additional_certificates_are_read_only_where_recorded(lbrecon, fleet, proxy):
    ec2 = fleet.c["ec2"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                 SubnetId=fleet.subnets[0])["Instances"][0]["InstanceId"]
    second = fleet.c["acm"].request_certificate(DomainName="api.example.com")["CertificateArn"]
    tg_arn = add_web(fleet, "certs")
    add_web(fleet, "plain")
    fleet.elb.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": instance, "Port": 8080}])
    https = fleet.elb.create_listener(
        LoadBalancerArn=fleet.arns["certs"], Protocol="HTTPS", Port=443, SslPolicy="ELBSecurityPolicy-2016-08",
        Certificates=[{"CertificateArn": fleet.certificate}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
    )["Listeners"][0]["ListenerArn"]
    fleet.elb.add_listener_certificates(ListenerArn=https, Certificates=[{"CertificateArn": second}])
    record = fleet.records["certs"]
    # No `certificates` here: moto lists added certificates in DescribeListeners too, where AWS
    # gives only the default one.
    record["listeners"].append({
        "port": 443, "protocol": "HTTPS", "additional_certificates": [second],
        "default_actions": [{"type": "forward", "target_group": "certs-tg"}],
    })
    record["target_groups"][0]["targets"] = [{"id": instance, "port": 8080}]
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    lbrecon.endpoint = proxy.endpoint
    lbrecon.write_config(MINIMAL_CONFIG + FAST_AWS)

    _, report = lbrecon.check_json(expect=0)
    assert only_target(report)["summary"]["in_sync"] == 2
    # One listener records additional certificates and one target group records targets: one
    # call each, none for the load balancer that records neither.
    operations = proxy.operations()
    assert operations[("elasticloadbalancing", "DescribeListenerCertificates")] == 1
    assert operations[("elasticloadbalancing", "DescribeTargetHealth")] == 1

    fleet.elb.deregister_targets(TargetGroupArn=tg_arn, Targets=[{"Id": instance, "Port": 8080}])
    fleet.elb.remove_listener_certificates(ListenerArn=https, Certificates=[{"CertificateArn": second}])
    _, report = lbrecon.check_json(expect=2)
    changes = by_name(only_target(report))["certs"]["changes"]
    assert changes == [
        {"path": "/listeners/443/additional_certificates", "recorded": [second], "live": []},
        {"path": "/target_groups/certs-tg/targets", "recorded": [{"id": instance, "port": 8080}], "live": []},
    ]


def rules_calls(proxy):
    return proxy.operations().get(("elasticloadbalancing", "DescribeRules"), 0)


def test_gateway_listeners_are_never_asked_for_rules_and_their_drift_still_counts(lbrecon, fleet, proxy):
    fleet.gwlb("gw-0")
    fleet.gwlb("gw-1")
    fleet.nlb("db-0")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    lbrecon.endpoint = proxy.endpoint
    lbrecon.write_config(MINIMAL_CONFIG + FAST_AWS)
    _, report = lbrecon.check_json(expect=0)
    assert only_target(report)["summary"]["in_sync"] == 3
    # One listener of the network load balancer; none of the gateways'.
    assert rules_calls(proxy) == 1

    # Their default action and attributes are still read and compared.
    other_arn, _ = fleet._target_group("gw-1-other", protocol="GENEVE", port=6081)
    listener = fleet.elb.describe_listeners(LoadBalancerArn=fleet.arns["gw-1"])["Listeners"][0]["ListenerArn"]
    fleet.elb.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": other_arn}])
    fleet.elb.modify_load_balancer_attributes(
        LoadBalancerArn=fleet.arns["gw-0"], Attributes=[{"Key": "load_balancing.cross_zone.enabled", "Value": "false"}]
    )
    _, report = lbrecon.check_json(expect=2)
    lbs = by_name(only_target(report))
    assert lbs["gw-0"]["changes"] == [
        {"path": "/attributes/load_balancing.cross_zone.enabled", "recorded": "true", "live": "false"}
    ]
    assert lbs["gw-1"]["changes"] == [
        {
            "path": "/listeners/gateway/default_actions",
            "recorded": [{"type": "forward", "target_group": "gw-1-geneve"}],
            "live": [{"type": "forward", "target_group": "gw-1-other"}],
        }
    ]


def test_a_load_balancer_deleted_inside_a_tag_batch_fails_none_of_its_neighbours(faithful, fleet):
    proxy, lbrecon = faithful
    for i in range(12):
        fleet.alb(f"web-{i:02d}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    # Deleted after its listeners were read, before its tags are: AWS then fails the whole
    # DescribeTags call it is in (36 ARNs: 12 load balancers, 24 target groups).
    proxy.before("DescribeTags", lambda: fleet.elb.delete_load_balancer(LoadBalancerArn=fleet.arns["web-05"]))
    lbrecon.write_config(MINIMAL_CONFIG + FAST_AWS)
    result = lbrecon.run("check", "--format", "json")
    assert result.returncode == 2, result.stderr
    import json

    target = only_target(json.loads(result.stdout))
    assert target["complete"] is True, target
    assert target["error"] is None
    assert target["load_balancers"] == [{"name": "web-05", "kind": "missing_live", "changes": []}]
    assert target["summary"]["in_sync"] == 11
    # Two batches of 20 ARNs; the one that failed was asked again without the gone ARN, the
    # extra call counted as a retry, apart from the full read's calls.
    assert proxy.operations()[("elasticloadbalancing", "DescribeTags")] == 3


def test_a_target_group_deleted_inside_a_tag_batch_is_gone_not_an_error(faithful, fleet):
    proxy, lbrecon = faithful
    for i in range(5):
        fleet.alb(f"web-{i}")
    tg_arn = add_web(fleet, "small")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")

    def delete_group():
        fleet.elb.delete_listener(ListenerArn=fleet.listener_arn("small", 80))
        fleet.elb.delete_target_group(TargetGroupArn=tg_arn)

    proxy.before("DescribeTags", delete_group)
    lbrecon.write_config(MINIMAL_CONFIG + FAST_AWS)
    code, report = lbrecon.check_json()
    target = only_target(report)
    assert code == 2, report
    assert target["complete"] is True and target["error"] is None, target
    assert target["summary"]["in_sync"] == 5
    changes = by_name(target)["small"]["changes"]
    assert [c["path"] for c in changes] == ["/target_groups/small-tg"]
    assert changes[0]["live"] is None


def test_an_aws_error_names_call_code_message_and_resource_never_the_sdk_internals(faithful, fleet):
    proxy, lbrecon = faithful
    fleet.alb("web-0")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    proxy.fail("DescribeTags", "access_denied", times=100)
    lbrecon.write_config(MINIMAL_CONFIG + FAST_AWS)
    _, report = lbrecon.check_json(expect=1)
    error = only_target(report)["error"]
    assert error.startswith("DescribeTags failed: AccessDenied: injected AccessDenied (for "), error
    assert "load balancer web-0" in error or "target group web-0-" in error, error
    for internal in ("ServiceError", "raw:", "Response {", "source:"):
        assert internal not in error, error


@MOTO_ONLY
def test_every_config_problem_is_listed_with_its_key(lbrecon):
    lbrecon.write_config(
        MINIMAL_CONFIG.replace('interval = "30s"', 'interval = "soon"\nspeed = 1')
        .replace('region = "us-east-1"', 'region = "us-east-1"\ncolour = "red"')
        .replace("min_missing = 1", 'min_missing = "one"')
        .replace('type = "dynamodb_flag"', 'type = "email"')
    )
    for command in ("validate", "check"):
        result = lbrecon.run(command)
        assert result.returncode == 78, result.stderr
        problems = [line.strip()[2:] for line in result.stderr.splitlines() if line.strip().startswith("- ")]
        keys = sorted(problem.split(":")[0] for problem in problems)
        assert keys == [
            "daemon.interval",
            "daemon.speed",
            "guard.min_missing",
            "guard.pausers[0].type",
            "targets[0].colour",
        ], result.stderr
        assert "5 problem(s)" in result.stderr
