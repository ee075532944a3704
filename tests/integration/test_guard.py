"""The guard against moto: the Christmas Eve replay, and what must not trip it."""

import json
import signal
import time

import pytest
from lbrecon_harness.config import daemon_config
from lbrecon_harness.fleet import (
    Fleet,
    add_scaling_group,
    add_web,
    control_item,
    create_state_table,
    live_snapshot,
    suspended,
    table_items,
    wait_for,
)
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port

DEFAULT_PROCESSES = {"Launch", "Terminate", "AZRebalance", "AlarmNotification", "ScheduledActions", "ReplaceUnhealthy"}
T = {"target": "prod-use1"}

GUARD = """
[guard]
min_missing = 1
max_missing_ratio = 0.05
confirm_cycles = 2
new_load_balancer_grace = "0s"

[[guard.pausers]]
type = "dynamodb_flag"

[[guard.pausers]]
type = "autoscaling"
"""


@pytest.fixture
def fleet(moto):
    """Twenty load balancers, each with a target group behind an Auto Scaling group; group
    asg-0 already has AZRebalance suspended by its operator."""
    fleet = Fleet(moto.endpoint)
    for i in range(20):
        tg = add_web(fleet, f"web-{i:02d}")
        add_scaling_group(fleet, f"asg-{i:02d}", [tg])
    fleet.c["autoscaling"].suspend_processes(AutoScalingGroupName="asg-00", ScalingProcesses=["AZRebalance"])
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    return fleet


def start(lbrecon, daemons, interval="1s", extra=GUARD, endpoint=None, init=True, cycle_deadline="20s"):
    if endpoint:
        lbrecon.endpoint = endpoint
    port = free_port()
    lbrecon.write_config(daemon_config(port, interval=interval, extra=extra, cycle_deadline=cycle_deadline))
    if init:
        result = lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-1")
        assert result.returncode == 0, result.stderr
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    return daemon


def paused(fleet):
    item = control_item(fleet, "lb-state-control", "prod-use1")
    return bool(item and item.get("paused"))


def test_the_christmas_eve_replay(lbrecon, fleet, daemons):
    daemon = start(lbrecon, daemons)
    records_before = table_items(fleet, "lb-state")
    live_before = live_snapshot(fleet)
    doomed = [f"web-{i:02d}" for i in (0, 3, 5, 8, 13, 17)]  # 30% of the records

    # The maintenance process runs against the state table.
    def complete_cycles():
        return metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="complete") or 0

    cycles_before = complete_cycles()
    for name in doomed:
        fleet.delete_record("lb-state", name)
    wait_for(lambda: paused(fleet), timeout=30, interval=0.05, what="the pause")
    # Within confirm_cycles complete cycles of the deletions (counted in cycles, not seconds,
    # so a slow machine cannot fail it): the cycle in flight while they ran, then at most two.
    assert complete_cycles() - cycles_before <= 1 + 2

    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert item["by"] == "lbrecon"
    assert "mass loss" in item["reason"] or "state data missing" in item["reason"]
    # The trip may come from a cycle that saw only some of the deletions; while tripped, every
    # cycle refreshes the missing names.
    wait_for(lambda: sorted(control_item(fleet, "lb-state-control", "prod-use1")["missing"]) == doomed,
             timeout=10, what="every deleted record listed as missing")
    wait_for(lambda: control_item(fleet, "lb-state-control", "prod-use1")["pausers"]["autoscaling"]["status"] == "done",
             timeout=10, what="the autoscaling pauser done")
    groups = {f"asg-{name[4:]}" for name in doomed}
    # An `affected` pause is extended, cycle by cycle, to every load balancer gone missing.
    wait_for(lambda: set(control_item(fleet, "lb-state-control", "prod-use1")["pausers"]["autoscaling"]["suspended"])
             == groups, timeout=10, what="every affected group suspended")
    item = control_item(fleet, "lb-state-control", "prod-use1")
    for i in range(20):
        group = f"asg-{i:02d}"
        if group in groups:
            assert suspended(fleet, group) == DEFAULT_PROCESSES, group
        elif group == "asg-00":
            assert suspended(fleet, group) == {"AZRebalance"}
        else:
            assert suspended(fleet, group) == set(), group
    # asg-00 had AZRebalance suspended already: lbrecon records only what it suspended.
    assert set(item["pausers"]["autoscaling"]["suspended"]["asg-00"]) == DEFAULT_PROCESSES - {"AZRebalance"}

    samples, _ = daemon.metrics()
    assert metric(samples, "lbrecon_scaling_paused", **T) == 1
    assert metric(samples, "lbrecon_guard_trips_total", **T) == 1

    status = json.loads(lbrecon.run("status", "--format", "json").stdout)["targets"][0]
    assert status["paused"] is True
    assert status["by"] == "lbrecon"
    assert sorted(status["missing"]) == doomed
    assert status["since"]
    assert set(status["paused_by_pausers"]) == {"dynamodb_flag", "autoscaling"}

    # lbrecon changed no record and no load balancer.
    records_after = table_items(fleet, "lb-state")
    assert records_after == [r for r in records_before if r["name"]["S"] not in doomed]
    assert live_snapshot(fleet) == live_before

    # Resume needs --force while records are missing, and restores exactly what was suspended.
    refused = lbrecon.run("resume", "--target", "prod-use1", "--reason", "drill")
    assert refused.returncode == 1
    assert "web-00" in refused.stderr
    done = lbrecon.run("resume", "--target", "prod-use1", "--reason", "records being restored", "--force")
    assert done.returncode == 0, done.stderr
    assert not paused(fleet)
    for i in range(20):
        group = f"asg-{i:02d}"
        assert suspended(fleet, group) == ({"AZRebalance"} if group == "asg-00" else set()), group
    # The acknowledged set does not trip again.
    time.sleep(3)
    assert not paused(fleet)
    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert [e["event"] for e in item["history"]][-2:] == ["trip", "resume"], [(e["event"], e.get("by"), e.get("detail")) for e in item["history"][-2:]]


def test_one_record_missing_for_one_cycle_does_not_trip(lbrecon, fleet, daemons):
    daemon = start(lbrecon, daemons, interval="2s")
    fleet.delete_record("lb-state", "web-04")
    wait_for(lambda: metric(daemon.metrics()[0], "lbrecon_drift_load_balancers", **T, kind="missing_record") == 1,
             timeout=10, interval=0.05, what="the missing record seen once")
    fleet.write_records("lb-state", ["web-04"])
    time.sleep(5)
    assert not paused(fleet)
    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert item["quarantine"] == []
    assert metric(daemon.metrics()[0], "lbrecon_guard_trips_total", **T) == 0


def test_a_single_missing_record_is_quarantined_then_trips(lbrecon, fleet, daemons):
    start(lbrecon, daemons)
    fleet.delete_record("lb-state", "web-07")
    wait_for(lambda: paused(fleet), timeout=30, what="the pause")
    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert item["quarantine"] == ["web-07"]
    assert "1 of 20" in item["reason"]
    # The flag is written with the pause plan, before the pausers run.
    wait_for(lambda: suspended(fleet, "asg-07") == DEFAULT_PROCESSES, timeout=10, what="the suspension")
    assert suspended(fleet, "asg-08") == set()
    # The record comes back: out of quarantine; still paused until resumed.
    fleet.write_records("lb-state", ["web-07"])
    wait_for(lambda: control_item(fleet, "lb-state-control", "prod-use1")["quarantine"] == [], what="quarantine cleared")
    assert paused(fleet)
    assert lbrecon.run("resume", "--target", "prod-use1", "--reason", "restored").returncode == 0
    assert suspended(fleet, "asg-07") == set()


def test_failed_reads_while_records_are_deleted_do_not_trip(lbrecon, fleet, daemons, proxy):
    # A throttled scan is retried for most of the cycle's deadline: a short one keeps this short.
    daemon = start(lbrecon, daemons, endpoint=proxy.endpoint, extra="max_attempts = 1\n" + GUARD, cycle_deadline="3s")
    proxy.fail("Scan", "throttle", times=10_000)
    for i in range(6):
        fleet.delete_record("lb-state", f"web-{i:02d}")
    wait_for(lambda: (metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="incomplete") or 0) >= 3,
             timeout=30, what="incomplete cycles")
    assert not paused(fleet)
    assert metric(daemon.metrics()[0], "lbrecon_drift_load_balancers", **T, kind="missing_record") == 0
    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert item["quarantine"] == []
    # The fault clears: the real loss is caught.
    proxy.clear()
    wait_for(lambda: paused(fleet), timeout=15, what="the pause after the fault cleared")


def test_a_deleted_state_table_trips(lbrecon, fleet, daemons):
    start(lbrecon, daemons)
    wait_for(lambda: control_item(fleet, "lb-state-control", "prod-use1").get("state_table_seen"), what="the table seen")
    fleet.c["dynamodb"].delete_table(TableName="lb-state")
    wait_for(lambda: paused(fleet), timeout=10, what="the pause")
    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert "state table" in item["reason"]
    assert len(item["missing"]) == 20


def test_a_restart_while_paused_loses_nothing(lbrecon, fleet, daemons):
    daemon = start(lbrecon, daemons)
    for i in range(6):
        fleet.delete_record("lb-state", f"web-{i:02d}")
    wait_for(lambda: paused(fleet), timeout=10, what="the pause")
    # The pause extends to every group as the deletions are seen: wait until it holds all six.
    wait_for(lambda: len(control_item(fleet, "lb-state-control", "prod-use1")["pausers"]["autoscaling"]
                         .get("suspended", {})) == 6,
             what="the autoscaling pauser done for all six")
    before = control_item(fleet, "lb-state-control", "prod-use1")
    daemon.signal(signal.SIGKILL)
    daemon.wait(timeout=10)

    port = free_port()
    lbrecon.write_config(daemon_config(port, extra=GUARD))
    again = daemons.start(lbrecon, port, log_name="daemon-2.log")
    again.wait_ready()
    time.sleep(3)
    after = control_item(fleet, "lb-state-control", "prod-use1")
    assert after["paused"] is True
    assert after["since"] == before["since"]
    assert after["pausers"]["autoscaling"]["suspended"] == before["pausers"]["autoscaling"]["suspended"]
    assert [e["event"] for e in after["history"]].count("trip") == 1
    assert metric(again.metrics()[0], "lbrecon_scaling_paused", **T) == 1
    assert metric(again.metrics()[0], "lbrecon_guard_trips_total", **T) == 0
    result = lbrecon.run("resume", "--target", "prod-use1", "--reason", "after restart", "--force")
    assert result.returncode == 0, result.stderr
    assert suspended(fleet, "asg-01") == set()


def test_a_pause_undone_by_hand_is_reported_not_reapplied(lbrecon, fleet, daemons):
    daemon = start(lbrecon, daemons)
    fleet.delete_record("lb-state", "web-09")
    wait_for(lambda: suspended(fleet, "asg-09") == DEFAULT_PROCESSES, timeout=10, what="the suspension")
    fleet.c["autoscaling"].resume_processes(AutoScalingGroupName="asg-09", ScalingProcesses=["Launch"])
    wait_for(lambda: (metric(daemon.metrics()[0], "lbrecon_pause_undone_total", **T, pauser="autoscaling") or 0) >= 1,
             what="the undo reported")
    time.sleep(2.5)
    assert suspended(fleet, "asg-09") == DEFAULT_PROCESSES - {"Launch"}
    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert "Launch" in item["pausers"]["autoscaling"]["undone"]["asg-09"]
    assert any(e["event"] == "pause_undone" for e in item["history"])
    # Resume resumes only what lbrecon suspended and is still suspended by it.
    assert lbrecon.run("resume", "--target", "prod-use1", "--reason", "x", "--force").returncode == 0
    assert suspended(fleet, "asg-09") == set()


def test_a_pauser_being_resumed_is_left_alone_by_the_daemon(lbrecon, fleet, daemons):
    """`lbrecon resume` marks a pauser `resuming` before it resumes anything, so a daemon cycle
    that reads the control item meanwhile neither reports the processes being resumed as undone
    by hand nor suspends them again. Here a resume stops halfway (marked, processes resumed,
    the item not yet updated); running resume again finishes it."""
    daemon = start(lbrecon, daemons)
    fleet.delete_record("lb-state", "web-09")
    wait_for(lambda: (control_item(fleet, "lb-state-control", "prod-use1") or {}).get("pausers", {})
             .get("autoscaling", {}).get("status") == "done", timeout=10, what="the pause recorded")
    # The mark, as resume writes it: conditional on the version read, again if the daemon wrote.
    for _ in range(20):
        seen = control_item(fleet, "lb-state-control", "prod-use1")["version"]
        try:
            fleet.c["dynamodb"].update_item(
                TableName="lb-state-control", Key={"target": {"S": "prod-use1"}},
                UpdateExpression="SET pausers.autoscaling.#s = :resuming, #v = #v + :one",
                ConditionExpression="#v = :seen",
                ExpressionAttributeNames={"#s": "status", "#v": "version"},
                ExpressionAttributeValues={":resuming": {"S": "resuming"}, ":one": {"N": "1"},
                                           ":seen": {"N": str(seen)}})
            break
        except fleet.c["dynamodb"].exceptions.ConditionalCheckFailedException:
            continue
    fleet.c["autoscaling"].resume_processes(AutoScalingGroupName="asg-09", ScalingProcesses=sorted(DEFAULT_PROCESSES))

    def cycles():
        return metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="complete") or 0

    seen = cycles()
    wait_for(lambda: cycles() >= seen + 3, timeout=30, what="three more cycles")
    assert suspended(fleet, "asg-09") == set()
    assert (metric(daemon.metrics()[0], "lbrecon_pause_undone_total", **T, pauser="autoscaling") or 0) == 0
    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert item["paused"] and item["pausers"]["autoscaling"]["status"] == "resuming"
    assert not any(e["event"] == "pause_undone" for e in item["history"])

    done = lbrecon.run("resume", "--target", "prod-use1", "--reason", "finish", "--force")
    assert done.returncode == 0, done.stderr
    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert not item["paused"] and "autoscaling" not in item.get("pausers", {})
    assert [e["event"] for e in item["history"]][-1] == "resume"
    assert suspended(fleet, "asg-09") == set()


def test_manual_pause_with_a_command_pauser_and_status(lbrecon, fleet, daemons, tmp_path):
    events = tmp_path / "events.jsonl"
    extra = GUARD + f"""
[[guard.pausers]]
type = "command"
command = ["sh", "-c", "cat >> {events}; echo >> {events}"]
timeout = "5s"
"""
    port = free_port()
    lbrecon.write_config(daemon_config(port, extra=extra))
    before = lbrecon.run("init", "--target", "prod-use1")
    assert before.returncode == 0 and "would create" in before.stdout
    assert lbrecon.run("status", "--format", "json").returncode == 0
    assert lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-7").returncode == 0
    again = lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-7")
    assert again.returncode == 0 and "exists" in again.stdout

    paused_run = lbrecon.run("pause", "--target", "prod-use1", "--reason", "game day")
    assert paused_run.returncode == 0, paused_run.stderr + paused_run.stdout
    status = json.loads(lbrecon.run("status", "--format", "json").stdout)["targets"][0]
    assert status["paused"] is True
    assert status["reason"] == "game day"
    assert status["by"].startswith("operator") or status["by"]
    assert status["paused_by_pausers"]["command"]["status"] == "done"
    table = lbrecon.run("status").stdout
    assert "PAUSED" in table and "game day" in table
    # Nothing is missing, so the affected-scope autoscaling pauser suspends nothing.
    assert all(suspended(fleet, f"asg-{i:02d}") == ({"AZRebalance"} if i == 0 else set()) for i in range(20))

    assert lbrecon.run("resume", "--target", "prod-use1", "--reason", "done").returncode == 0
    lines = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    assert [line["event"] for line in lines] == ["pause", "resume"]
    assert lines[0]["reason"] == "game day"
    assert lines[0]["target"] == "prod-use1"
    not_paused = lbrecon.run("resume", "--target", "prod-use1", "--reason", "again")
    assert not_paused.returncode == 0 and "not paused" in not_paused.stdout


def test_without_approval_init_changes_nothing(lbrecon, fleet):
    lbrecon.write_config(daemon_config(free_port(), extra=GUARD))
    result = lbrecon.run("init", "--target", "prod-use1")
    assert result.returncode == 0
    tables = fleet.c["dynamodb"].list_tables()["TableNames"]
    assert "lb-state-control" not in tables
    missing = lbrecon.run("pause", "--target", "prod-use1", "--reason", "x")
    assert missing.returncode == 1
    assert "lbrecon init" in missing.stderr


def test_auto_resume_resumes_what_the_guard_suspended(lbrecon, fleet, daemons):
    start(lbrecon, daemons, extra=GUARD.replace("[[guard.pausers]]", "auto_resume_after = 2\n\n[[guard.pausers]]", 1))
    fleet.delete_record("lb-state", "web-03")
    fleet.delete_record("lb-state", "web-04")
    wait_for(lambda: suspended(fleet, "asg-03") == DEFAULT_PROCESSES, timeout=15, what="the suspension")
    assert paused(fleet)
    # The records come back: after two complete cycles without a missing record, the daemon
    # resumes exactly what it suspended.
    fleet.write_records("lb-state", ["web-03", "web-04"])
    wait_for(lambda: not paused(fleet), timeout=15, what="the automatic resume")
    assert suspended(fleet, "asg-03") == set()
    assert suspended(fleet, "asg-04") == set()
    assert suspended(fleet, "asg-00") == {"AZRebalance"}
    events = [e["event"] for e in control_item(fleet, "lb-state-control", "prod-use1")["history"]]
    assert events[-2:] == ["trip", "resume"], events


def test_a_manual_pause_with_the_global_autoscaling_scope(lbrecon, fleet):
    lbrecon.write_config(daemon_config(free_port(), extra=GUARD.replace(
        'type = "autoscaling"', 'type = "autoscaling"\nscope = "all"\nprocesses = ["Launch", "AZRebalance"]')))
    assert lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-2").returncode == 0
    result = lbrecon.run("pause", "--target", "prod-use1", "--reason", "region evacuation")
    assert result.returncode == 0, result.stderr + result.stdout
    assert all(suspended(fleet, f"asg-{i:02d}") == {"Launch", "AZRebalance"} for i in range(20))
    result = lbrecon.run("resume", "--target", "prod-use1", "--reason", "evacuation over")
    assert result.returncode == 0, result.stderr + result.stdout
    # asg-00's AZRebalance was suspended by its operator before: it stays suspended.
    assert suspended(fleet, "asg-00") == {"AZRebalance"}
    assert all(suspended(fleet, f"asg-{i:02d}") == set() for i in range(1, 20))
