"""A target's scope (docs/architecture.md#terms): load balancers no control plane of the target recorded (the
Kubernetes controller's `k8s-*`, another team's) beside a recorded fleet are never reported,
counted by the guard, paused for or adopted once the target is scoped by name or by tag; a loss
inside the scope still pauses at once."""

import json
import math

import pytest
from lbrecon_harness.config import FAST_AWS, daemon_config, target_config
from lbrecon_harness.fleet import control_item, wait_for
from lbrecon_harness.lbrecon import aws_env
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port
from test_guard import GUARD, T, fleet, paused  # noqa: F401 (fixture)

UNMANAGED = ["k8s-ingress-a", "k8s-ingress-b", "team-b-api"]


@pytest.fixture
def mixed(fleet):  # noqa: F811
    """The guard's twenty recorded `web-NN` load balancers, tagged owner=platform, and three
    nobody recorded: two of the Kubernetes controller's and another team's."""
    for name in [f"web-{i:02d}" for i in range(20)]:
        fleet.elb.add_tags(ResourceArns=[fleet.arns[name]], Tags=[{"Key": "owner", "Value": "platform"}])
    for name in UNMANAGED:
        fleet.bare(name)
        fleet.records.pop(name)
        key = "elbv2.k8s.aws/cluster" if name.startswith("k8s-") else "owner"
        fleet.elb.add_tags(ResourceArns=[fleet.arns[name]], Tags=[{"Key": key, "Value": "team-b"}])
    return fleet


def scoped(body):
    return target_config() + "\n[targets.scope]\n" + body + "\n"


def check(lbrecon, scope_body, expect):
    config = scoped(scope_body) if scope_body else target_config()
    lbrecon.write_config(config + FAST_AWS)
    result = lbrecon.run("check", "--format", "json")
    assert result.returncode == expect, result.stdout + result.stderr
    return json.loads(result.stdout)["targets"][0]


def test_check_with_each_kind_of_scope(lbrecon, mixed):
    # The whole account: the three are state data missing.
    target = check(lbrecon, None, expect=2)
    assert target["summary"]["missing_record"] == 3 and target["summary"]["out_of_scope"] == 0
    assert sorted(lb["name"] for lb in target["load_balancers"]) == sorted(UNMANAGED)

    for body in ('names = ["web-*"]', 'exclude = ["k8s-*", "team-b-*"]', 'tags = { owner = "platform" }'):
        target = check(lbrecon, body, expect=0)
        assert target["complete"] is True, body
        assert target["load_balancers"] == [], body
        assert target["summary"]["out_of_scope"] == 3, body
        assert target["summary"]["live"] == 20 and target["summary"]["in_sync"] == 20, body

    # A load balancer carrying the ownership tag without a record is state data missing.
    mixed.bare("web-new")
    mixed.records.pop("web-new")
    mixed.elb.add_tags(ResourceArns=[mixed.arns["web-new"]], Tags=[{"Key": "owner", "Value": "platform"}])
    target = check(lbrecon, 'tags = { owner = "platform" }', expect=2)
    assert [(lb["name"], lb["kind"]) for lb in target["load_balancers"]] == [("web-new", "missing_record")]
    assert target["summary"]["out_of_scope"] == 3
    # A record is the evidence of ownership, whatever the rules.
    target = check(lbrecon, 'names = ["nothing-*"]', expect=0)
    assert target["summary"]["out_of_scope"] == 4
    assert target["summary"]["in_sync"] == 20

    text = lbrecon.run("check")
    assert "outside the target's scope" in text.stdout


def test_validate_shows_the_scope_and_rejects_bad_globs(lbrecon):
    lbrecon.write_config(scoped('names = ["web-*"]\ntags = { owner = "platform" }'))
    result = lbrecon.run("validate")
    assert result.returncode == 0, result.stderr
    assert '[targets.scope]\nnames = ["web-*"]' in result.stdout
    assert 'owner = "platform"' in result.stdout
    lbrecon.write_config(scoped('names = []\nexclude = ["web-["]\nunknown = 1'))
    result = lbrecon.run("validate")
    assert result.returncode == 78
    assert "scope" in result.stderr and "unknown" in result.stderr


def test_tag_scoping_costs_no_more_than_the_floor(lbrecon, mixed, proxy):
    lbrecon.endpoint = proxy.endpoint
    check(lbrecon, 'tags = { owner = "platform" }', expect=0)
    n = 20 + len(UNMANAGED)
    groups = 20
    floor = math.ceil(n / 400) + math.ceil(groups / 400) + math.ceil((n + groups) / 20)
    tags_calls = proxy.operations().get(("elasticloadbalancing", "DescribeTags"), 0)
    # The recorded load balancers' tags and their groups' in full calls of 20, the unrecorded
    # ones' for the scope: within the floor's DescribeTags share here (40 + 3 ARNs: 3 calls).
    assert tags_calls == math.ceil(40 / 20) + math.ceil(len(UNMANAGED) / 20)
    assert tags_calls <= floor


def start(lbrecon, daemons, scope_body):
    port = free_port()
    text = daemon_config(port, extra=GUARD)
    text = text.replace('control_table = "lb-state-control"\n',
                        'control_table = "lb-state-control"\n\n[targets.scope]\n' + scope_body + "\n", 1)
    lbrecon.write_config(text)
    assert lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-1").returncode == 0
    daemon = daemons.start(lbrecon, port, env={**aws_env(lbrecon.endpoint), "LBRECON_LOG": "info"})
    daemon.wait_ready()
    return daemon, port


def cycles(daemon):
    return metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="complete") or 0


def test_the_daemon_leaves_unmanaged_load_balancers_alone_and_still_pauses_for_a_loss(lbrecon, mixed, daemons):
    daemon, _ = start(lbrecon, daemons, 'tags = { owner = "platform" }')
    reports = []

    def seen_cycles(n):
        reports.append(daemon.get("/drift").json())
        return cycles(daemon) >= n

    wait_for(lambda: seen_cycles(4), timeout=30, what="four cycles")
    assert not paused(mixed)
    # Pending in the first cycle (tags not read yet), out of scope after: never reported.
    for report in reports:
        assert not any(lb["name"] in UNMANAGED for t in report["targets"] for lb in t["load_balancers"])
    samples, _ = daemon.metrics()
    assert metric(samples, "lbrecon_load_balancers", **T, source="out_of_scope") == 3
    assert metric(samples, "lbrecon_load_balancers", **T, source="live") == 20

    # A new unmanaged load balancer while the daemon runs: counted out of scope, nothing else.
    mixed.bare("k8s-ingress-c")
    mixed.records.pop("k8s-ingress-c")
    wait_for(lambda: metric(daemon.metrics()[0], "lbrecon_load_balancers", **T, source="out_of_scope") == 4,
             timeout=20, what="the new one counted out of scope")
    seen = cycles(daemon)
    wait_for(lambda: cycles(daemon) >= seen + 3, timeout=20, what="three more cycles")
    assert not paused(mixed)
    item = control_item(mixed, "lb-state-control", "prod-use1")
    assert not item.get("quarantine") and not item["guard"]["missing_streaks"]

    # A loss inside the scope pauses at once (mass loss), for the scope's load balancers only.
    doomed = ["web-01", "web-02", "web-03", "web-04", "web-05"]
    mixed.c["dynamodb"].batch_write_item(RequestItems={"lb-state": [
        {"DeleteRequest": {"Key": {"name": {"S": name}}}} for name in doomed]})
    wait_for(lambda: paused(mixed), timeout=20, what="the pause")
    wait_for(lambda: sorted(control_item(mixed, "lb-state-control", "prod-use1")["missing"]) == doomed,
             timeout=10, what="the missing names")
    item = control_item(mixed, "lb-state-control", "prod-use1")
    assert "mass loss" in item["reason"]
    assert not set(item["missing"]) & set(UNMANAGED)


def test_a_load_balancer_that_leaves_the_scope_during_a_loss_stays_counted(lbrecon, mixed, daemons):
    daemon, port = start(lbrecon, daemons, 'tags = { owner = "platform" }')
    mixed.delete_record("lb-state", "web-07")
    wait_for(lambda: "web-07" in (control_item(mixed, "lb-state-control", "prod-use1").get("quarantine") or []),
             timeout=20, what="web-07 quarantined")
    assert paused(mixed)
    # Someone removes its ownership tag during the incident; a new process reads its tags
    # afresh and still counts it, and `check` reports it.
    mixed.elb.remove_tags(ResourceArns=[mixed.arns["web-07"]], TagKeys=["owner"])
    daemon.stop()
    daemon = daemons.start(lbrecon, port, env={**aws_env(lbrecon.endpoint), "LBRECON_LOG": "info"}, log_name="daemon-2.log")
    daemon.wait_ready()
    seen = cycles(daemon)
    wait_for(lambda: cycles(daemon) >= seen + 3, timeout=20, what="three cycles")
    item = control_item(mixed, "lb-state-control", "prod-use1")
    assert item["paused"] and item["missing"] == ["web-07"] and "web-07" in item["quarantine"]
    assert "kept in it until its record is back" in daemon.output()
    target = json.loads(lbrecon.run("check", "--format", "json").stdout)["targets"][0]
    assert [(lb["name"], lb["kind"]) for lb in target["load_balancers"]] == [("web-07", "missing_record")]
    # The record is back: it leaves the quarantine, and then the scope.
    mixed.write_records("lb-state", ["web-07"])
    wait_for(lambda: not control_item(mixed, "lb-state-control", "prod-use1").get("quarantine"),
             timeout=20, what="the quarantine cleared")


def test_adopt_writes_records_only_inside_the_scope(lbrecon, mixed):
    from lbrecon_harness.fleet import table_items

    mixed.bare("web-new")
    mixed.records.pop("web-new")
    mixed.elb.add_tags(ResourceArns=[mixed.arns["web-new"]], Tags=[{"Key": "owner", "Value": "platform"}])
    for body in ('names = ["web-*"]', 'tags = { owner = "platform" }'):
        lbrecon.write_config(scoped(body) + FAST_AWS)
        dry = lbrecon.run("adopt", "--target", "prod-use1", "--all")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "1 to write" in dry.stdout, body + dry.stdout
        assert not any(name in dry.stdout for name in UNMANAGED), body + dry.stdout
        named = lbrecon.run("adopt", "--target", "prod-use1", "k8s-ingress-a", "--dry-run")
        assert "k8s-ingress-a: it is outside the target's scope" in named.stdout, named.stdout
    done = lbrecon.run("adopt", "--target", "prod-use1", "--all", "--approve", "CHG-9")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote 1 record(s)" in done.stdout
    names = {item["name"]["S"] for item in table_items(mixed, "lb-state")}
    assert "web-new" in names and not names & set(UNMANAGED)


def test_a_global_pause_leaves_groups_of_load_balancers_outside_the_scope_alone(lbrecon, mixed):
    from lbrecon_harness.fleet import add_scaling_group, add_web, suspended

    # The Kubernetes controller's own load balancer, with its own target group and group.
    tg = add_web(mixed, "k8s-ingress-z")
    mixed.records.pop("k8s-ingress-z")
    add_scaling_group(mixed, "asg-k8s", [tg])
    extra = GUARD.replace('type = "autoscaling"', 'type = "autoscaling"\nscope = "all"')
    lbrecon.write_config(scoped('exclude = ["k8s-*", "team-b-*"]') + FAST_AWS + extra)
    assert lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-1").returncode == 0
    result = lbrecon.run("pause", "--target", "prod-use1", "--reason", "region evacuation")
    assert result.returncode == 0, result.stdout + result.stderr
    assert suspended(mixed, "asg-05") and suspended(mixed, "asg-19")
    assert suspended(mixed, "asg-k8s") == set()
    result = lbrecon.run("resume", "--target", "prod-use1", "--reason", "over")
    assert result.returncode == 0, result.stdout + result.stderr
    assert suspended(mixed, "asg-05") == set()


def test_tag_scoping_through_aws_answers_with_a_load_balancer_deleted_before_its_tags(lbrecon, mixed, moto):
    """Through the AWS-faithful proxy: AWS fails a whole DescribeTags call when one of its ARNs
    is gone. An unmanaged load balancer deleted between the presence pass and the scope's tag
    read fails none of the others, and makes nothing missing."""
    from lbrecon_harness.faultproxy import FaultProxy

    proxy = FaultProxy(moto.endpoint, faithful=True)
    try:
        lbrecon.endpoint = proxy.endpoint
        proxy.before("DescribeTags", lambda: mixed.elb.delete_load_balancer(LoadBalancerArn=mixed.arns["k8s-ingress-a"]))
        target = check(lbrecon, 'tags = { owner = "platform" }', expect=0)
        assert target["complete"] is True and target["error"] is None, target
        assert target["load_balancers"] == []
        assert target["summary"]["out_of_scope"] == 2
        assert target["summary"]["in_sync"] == 20
    finally:
        proxy.stop()
