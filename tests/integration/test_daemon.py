"""`lbrecon run`: metrics against docs/architecture.md#http, the HTTP endpoints, logs, and shutdown."""

import json
import signal
import time

import pytest
import requests
from lbrecon_harness.config import daemon_config
from lbrecon_harness.fleet import STRICT_SSL_POLICY, Fleet, create_state_table, wait_for
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port

SPEC_METRICS = {
    # name: (type, labels besides target)
    "lbrecon_cycles_total": ("counter", {"outcome"}),
    "lbrecon_cycle_duration_seconds": ("histogram", set()),
    "lbrecon_last_complete_cycle_timestamp_seconds": ("gauge", set()),
    "lbrecon_load_balancers": ("gauge", {"source"}),
    "lbrecon_drift_load_balancers": ("gauge", {"kind"}),
    "lbrecon_drift_changes": ("gauge", set()),
    "lbrecon_load_balancer_drift": ("gauge", {"name", "kind"}),
    "lbrecon_scaling_paused": ("gauge", set()),
    "lbrecon_aws_requests_total": ("counter", {"service", "operation", "outcome"}),
    "lbrecon_aws_request_duration_seconds": ("histogram", {"service", "operation"}),
    "lbrecon_deep_check_age_seconds": ("gauge", set()),
    "lbrecon_leader": ("gauge", set()),
    "lbrecon_build_info": ("gauge", {"version"}),
}


@pytest.fixture
def fleet(moto):
    fleet = Fleet(moto.endpoint)
    for i in range(4):
        fleet.alb(f"web-{i}")
    fleet.nlb("db-0")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    return fleet


def start(lbrecon, daemons, extra="", endpoint=None, interval="1s", cycle_deadline="20s", **kw):
    port = free_port()
    lbrecon.write_config(daemon_config(port, interval=interval, extra=extra, cycle_deadline=cycle_deadline))
    if endpoint:
        lbrecon.endpoint = endpoint
    daemon = daemons.start(lbrecon, port, **kw)
    daemon.wait_ready()
    return daemon


def test_metrics_follow_the_spec(lbrecon, fleet, daemons):
    fleet.delete_record("lb-state", "web-3")
    fleet.elb.modify_listener(ListenerArn=fleet.listener_arn("web-2", 443), SslPolicy=STRICT_SSL_POLICY)
    daemon = start(lbrecon, daemons)
    samples, types = daemon.metrics()

    names = {name for name, _ in samples}
    for name, (kind, labels) in SPEC_METRICS.items():
        family = name[: -len("_total")] if kind == "counter" else name
        assert types.get(family) == kind, f"{name}: type {types.get(family)}"
        series = [dict(l) for n, l in samples if n in (name, name + "_bucket", name + "_count")]
        assert series, f"{name} not exported:\n{sorted(names)}"
        for labelset in series:
            labelset.pop("le", None)
            assert set(labelset) == {"target"} | labels, f"{name}: labels {labelset}"
            assert labelset["target"] == "prod-use1"
    for name, labels in samples:
        assert name.startswith("lbrecon_"), name
        assert dict(labels).get("target") == "prod-use1", (name, labels)

    t = {"target": "prod-use1"}
    assert metric(samples, "lbrecon_load_balancers", **t, source="live") == 5
    assert metric(samples, "lbrecon_load_balancers", **t, source="recorded") == 4
    kinds = {k: metric(samples, "lbrecon_drift_load_balancers", **t, kind=k) for k in
             ("in_sync", "changed", "missing_record", "missing_live", "invalid_record")}
    assert kinds == {"in_sync": 3, "changed": 1, "missing_record": 1, "missing_live": 0, "invalid_record": 0}
    assert metric(samples, "lbrecon_drift_changes", **t) == 1
    assert metric(samples, "lbrecon_load_balancer_drift", **t, name="web-2", kind="changed") == 1
    assert metric(samples, "lbrecon_load_balancer_drift", **t, name="web-3", kind="missing_record") == 1
    assert metric(samples, "lbrecon_scaling_paused", **t) == 0
    assert metric(samples, "lbrecon_leader", **t) == 1
    assert metric(samples, "lbrecon_cycles_total", **t, outcome="complete") >= 1
    assert metric(samples, "lbrecon_aws_requests_total", **t, service="elasticloadbalancing",
                  operation="DescribeLoadBalancers", outcome="ok") >= 1
    assert metric(samples, "lbrecon_aws_requests_total", **t, service="dynamodb", operation="Scan", outcome="ok") >= 1
    assert abs(metric(samples, "lbrecon_last_complete_cycle_timestamp_seconds", **t) - time.time()) < 30
    assert metric(samples, "lbrecon_deep_check_age_seconds", **t) < 30

    # Undo the drift: the per-load-balancer series drops to 0, the counts follow.
    fleet.elb.modify_listener(ListenerArn=fleet.listener_arn("web-2", 443), SslPolicy="ELBSecurityPolicy-2016-08")
    fleet.write_records("lb-state", ["web-3"])
    wait_for(lambda: metric(daemon.metrics()[0], "lbrecon_drift_load_balancers", **t, kind="in_sync") == 5,
             what="the fleet back in sync")
    samples, _ = daemon.metrics()
    assert metric(samples, "lbrecon_load_balancer_drift", **t, name="web-2", kind="changed") == 0
    assert metric(samples, "lbrecon_drift_changes", **t) == 0


def test_endpoints_read_only(lbrecon, fleet, daemons):
    daemon = start(lbrecon, daemons)
    assert daemon.get("/healthz").status_code == 200
    assert daemon.get("/readyz").status_code == 200
    drift = daemon.get("/drift")
    assert drift.headers["content-type"].startswith("application/json")
    report = drift.json()
    assert set(report) == {"generated_at", "targets"}
    assert report["targets"][0]["target"] == "prod-use1"
    assert report["targets"][0]["summary"]["in_sync"] == 5
    # When each load balancer was last deep-checked (a complete cycle has read all five).
    checked = report["targets"][0]["deep_checked_at"]
    assert sorted(checked) == sorted(fleet.records)
    assert all(at and at.endswith("Z") for at in checked.values()), checked
    assert daemon.get("/metrics").headers["content-type"].startswith("text/plain")
    assert daemon.get("/nope").status_code == 404
    assert daemon.get("/").status_code == 404
    for path in ("/metrics", "/healthz", "/readyz", "/drift"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert daemon.get(path, method=method).status_code == 405, (path, method)


def test_json_logs_have_one_summary_per_cycle(lbrecon, fleet, daemons):
    from lbrecon_harness.lbrecon import aws_env

    env = aws_env(lbrecon.endpoint)
    env.update(LBRECON_LOG_FORMAT="json", LBRECON_LOG="info")
    daemon = start(lbrecon, daemons, env=env)
    wait_for(lambda: daemon.output().count("cycle complete") >= 2, what="two cycles")
    daemon.stop()
    lines = [json.loads(line) for line in daemon.output().splitlines() if line.strip()]
    summaries = [line for line in lines if line.get("message") == "cycle complete"]
    assert len(summaries) >= 2
    first = summaries[0]
    assert first["target_name"] == "prod-use1"
    assert first["live"] == 5 and first["recorded"] == 5 and first["in_sync"] == 5
    assert first["level"] == "INFO"
    assert "seconds" in first
    assert any(line.get("message") == "stopped" for line in lines)


def test_sigterm_finishes_the_cycle_in_flight(lbrecon, fleet, daemons, proxy):
    # An interval long enough for the slowed deep read: deep reads end when the next presence
    # pass is due, and this test is about the cycle, not that deadline.
    daemon = start(lbrecon, daemons, endpoint=proxy.endpoint, interval="5s")
    # Slow down the next cycle's deep reads, wait until one is in flight, then SIGTERM.
    before = proxy.operations().get(("elasticloadbalancing", "DescribeListeners"), 0)
    proxy.fail("DescribeListeners", "delay", times=1, delay=3.0)
    wait_for(lambda: proxy.operations().get(("elasticloadbalancing", "DescribeListeners"), 0) > before,
             what="a cycle in flight")
    cycles_before = daemon.output().count("cycle complete")
    signalled = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=25) == 0
    elapsed = time.monotonic() - signalled
    output = daemon.output()
    assert elapsed >= 1.5, f"exited after {elapsed:.1f}s, before the cycle in flight finished"
    assert output.count("cycle complete") == cycles_before + 1, output
    assert output.index("SIGTERM received") < output.rindex("cycle complete")
    assert "stopped" in output


def test_a_second_signal_exits_at_once(lbrecon, fleet, daemons, proxy):
    daemon = start(lbrecon, daemons, endpoint=proxy.endpoint)
    proxy.fail("DescribeListeners", "delay", times=1, delay=15.0)
    wait_for(lambda: any(fault.seen for fault in proxy.faults), what="the slow call")
    daemon.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert daemon.process.poll() is None
    daemon.signal(signal.SIGINT)
    assert daemon.wait(timeout=5) == 130


def test_an_incomplete_cycle_is_counted_and_reports_nothing_missing(lbrecon, fleet, daemons, proxy):
    # A throttled presence page is retried until the cycle's deadline, then the cycle is
    # incomplete: a short deadline keeps the test short.
    daemon = start(lbrecon, daemons, endpoint=proxy.endpoint, extra="max_attempts = 1\n", cycle_deadline="3s")
    t = {"target": "prod-use1"}
    proxy.fail("Scan", "throttle", times=1000)
    fleet.delete_record("lb-state", "web-0")
    wait_for(lambda: (metric(daemon.metrics()[0], "lbrecon_cycles_total", **t, outcome="incomplete") or 0) >= 2,
             what="incomplete cycles")
    samples, _ = daemon.metrics()
    assert metric(samples, "lbrecon_drift_load_balancers", **t, kind="missing_record") == 0
    assert metric(samples, "lbrecon_aws_requests_total", **t, service="dynamodb", operation="Scan", outcome="throttled") >= 2
    report = daemon.get("/drift").json()["targets"][0]
    assert report["complete"] is False
    assert "Scan" in report["error"]
    assert report["load_balancers"] == []
    # The fault clears: the next cycle is complete and the real loss is seen.
    proxy.clear()
    wait_for(lambda: metric(daemon.metrics()[0], "lbrecon_drift_load_balancers", **t, kind="missing_record") == 1,
             what="the missing record seen")


def test_a_state_table_never_seen_is_exit_78_at_start(lbrecon, moto, daemons):
    Fleet(moto.endpoint).bare("web-0")
    port = free_port()
    lbrecon.write_config(daemon_config(port))
    daemon = daemons.start(lbrecon, port)
    assert daemon.wait(timeout=30) == 78
    assert "lb-state" in daemon.output()
    with pytest.raises(requests.RequestException):
        daemon.get("/healthz", timeout=1)


def test_systemd_notification_and_watchdog(lbrecon, fleet, daemons, tmp_path):
    import socket

    from lbrecon_harness.lbrecon import aws_env

    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    env = aws_env(lbrecon.endpoint)
    env.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000", LBRECON_LOG="info")
    daemon = start(lbrecon, daemons, env=env)
    messages = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not ({"READY=1", "WATCHDOG=1"} <= set(messages)):
        messages.extend(sock.recv(4096).decode().split("\n"))
    assert "READY=1" in messages
    assert "WATCHDOG=1" in messages
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=25) == 0
    while "STOPPING=1" not in messages:
        messages.extend(sock.recv(4096).decode().split("\n"))
    sock.close()
