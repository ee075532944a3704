"""The guard's own actions under crashes, deadlines and races (docs/architecture.md#guard: written ahead, one actor
at a time). Real processes against the emulator, through a proxy that holds chosen requests,
so each kill and each race lands at a known step:

- the plan written ahead but no SuspendProcesses sent;
- SuspendProcesses in flight (the request still lands after the kill);
- SuspendProcesses done but the last write lost;
- a cycle deadline in the middle of the pausers;
- an operator's `resume --force` or `pause` while a trip's pausers run;
- an operator's pause over a guard pause with automatic resume on;
- a mass deletion while the daemon is down.

Each ends the same way: after `resume`, every group's suspended processes are exactly what they
were before the trip (asg-00's AZRebalance, suspended by its operator beforehand, stays), `status`
tells the truth, and nothing is reported as undone by hand that a person did not undo."""

import io
import json
import signal
import subprocess
import threading
import time

import pytest
from lbrecon_harness.config import daemon_config
from lbrecon_harness.faultproxy import FaultProxy
from lbrecon_harness.fleet import control_item, suspended, wait_for
from lbrecon_harness.lbrecon import aws_env
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port
from test_guard import DEFAULT_PROCESSES, GUARD, T, fleet, paused  # noqa: F401 (fixture)

# Five of twenty records (25%): a mass loss, so the first cycle that sees it trips.
DOOMED = ["web-00", "web-04", "web-08", "web-12", "web-16"]
GROUPS = {f"asg-{name[4:]}" for name in DOOMED}
CLAIM = '\nclaim_timeout = "3s"\n'


class Hold:
    """Holds the first request that `matches` for `seconds`, then forwards it (or, with
    `drop`, closes the connection without forwarding it)."""

    def __init__(self, matches, seconds, drop=False):
        self.matches = matches
        self.seconds = seconds
        self.drop = drop
        self.hit = threading.Event()
        self.released = threading.Event()


class HoldingProxy(FaultProxy):
    """The fault proxy, plus holds chosen by a request's body (which control-item write)."""

    def __init__(self, upstream):
        super().__init__(upstream)
        self.holds = []

    def hold(self, matches, seconds, drop=False):
        hold = Hold(matches, seconds, drop)
        with self.lock:
            self.holds.append(hold)
        return hold

    def handle(self, request):
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        with self.lock:
            hold = next((h for h in self.holds if not h.hit.is_set() and h.matches(request.headers, body)), None)
            if hold is not None:
                hold.hit.set()
        if hold is not None:
            time.sleep(hold.seconds)
            hold.released.set()
            if hold.drop:
                request.close_connection = True
                request.connection.close()
                return
        request.rfile = io.BytesIO(body)
        super().handle(request)


def operation(name):
    def matches(headers, body):
        return f"Action={name}".encode() in body or headers.get("X-Amz-Target", "").endswith("." + name)
    return matches


def control_write(*needles):
    """A PutItem on the control table whose body holds every needle."""
    def matches(headers, body):
        return (headers.get("X-Amz-Target", "").endswith(".PutItem") and b"lb-state-control" in body
                and all(needle.encode() in body for needle in needles))
    return matches


@pytest.fixture
def holding(moto):
    server = HoldingProxy(moto.endpoint)
    yield server
    server.stop()


def config(lbrecon, extra="", interval="1s", deadline="20s"):
    port = free_port()
    text = daemon_config(port, interval=interval, extra=GUARD.replace("[[guard.pausers]]", CLAIM + extra + "\n[[guard.pausers]]", 1))
    lbrecon.write_config(text.replace('cycle_deadline = "20s"', f'cycle_deadline = "{deadline}"'))
    return port


def start(lbrecon, daemons, endpoint, port, log_name="daemon.log"):
    lbrecon.endpoint = endpoint
    daemon = daemons.start(lbrecon, port, env={**aws_env(endpoint), "LBRECON_LOG": "info"}, log_name=log_name)
    daemon.wait_ready()
    return daemon


def init(lbrecon, moto):
    lbrecon.endpoint = moto.endpoint
    result = lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-1")
    assert result.returncode == 0, result.stderr


def item(fleet):
    return control_item(fleet, "lb-state-control", "prod-use1")


def kill(daemon):
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait(timeout=10)


def before_trip(fleet):
    return {f"asg-{i:02d}": suspended(fleet, f"asg-{i:02d}") for i in range(20)}


def assert_restored(fleet, before):
    after = before_trip(fleet)
    assert after == before, {g: (before[g], after[g]) for g in before if before[g] != after[g]}


def undone_total(daemon):
    samples, _ = daemon.metrics()
    return sum(metric(samples, "lbrecon_pause_undone_total", **T, pauser=p) or 0 for p in ("autoscaling", "dynamodb_flag"))


def resume(lbrecon, moto, reason="records being restored"):
    lbrecon.endpoint = moto.endpoint
    result = lbrecon.run("resume", "--target", "prod-use1", "--reason", reason, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def delete_doomed(fleet):
    """Deletes the five records in one request, so a cycle rarely sees only some of them (the
    tests below hold either way: a trip on part of the loss is extended to the rest)."""
    fleet.c["dynamodb"].batch_write_item(RequestItems={"lb-state": [
        {"DeleteRequest": {"Key": {"name": {"S": name}}}} for name in DOOMED]})


def groups_of(record):
    """The groups a pauser record suspends or is about to suspend."""
    return {group for key in ("suspended", "suspending") for group, processes in record.get(key, {}).items() if processes}


def test_a_kill_while_suspend_processes_is_in_flight_leaves_nothing_resume_misses(lbrecon, fleet, daemons, moto, holding):
    port = config(lbrecon)
    init(lbrecon, moto)
    before = before_trip(fleet)
    daemon = start(lbrecon, daemons, holding.endpoint, port)
    hold = holding.hold(operation("SuspendProcesses"), 2.0)
    delete_doomed(fleet)
    assert hold.hit.wait(30), "no SuspendProcesses sent"
    kill(daemon)
    assert hold.released.wait(10)
    # The request landed after the kill; what it suspended is written ahead in the plan.
    wait_for(lambda: any(suspended(fleet, g) for g in GROUPS - {"asg-00"}) or suspended(fleet, "asg-00") != {"AZRebalance"},
             timeout=10, what="the in-flight suspension landing")
    plan = item(fleet)
    assert plan["paused"] and plan["claim"]["by"] == "lbrecon"
    assert plan["pausers"]["autoscaling"]["status"] == "planned"
    assert "asg-00" in set(plan["pausers"]["autoscaling"]["suspending"]) <= GROUPS
    assert plan["pausers"]["autoscaling"]["suspending"]["asg-00"] == sorted(DEFAULT_PROCESSES - {"AZRebalance"})

    # A new process waits for the dead one's claim to go stale, then finishes the pause.
    daemon = start(lbrecon, daemons, moto.endpoint, port, log_name="daemon-2.log")
    wait_for(lambda: item(fleet)["pausers"]["autoscaling"]["status"] == "done" and "claim" not in item(fleet)
             and groups_of(item(fleet)["pausers"]["autoscaling"]) == GROUPS,
             timeout=20, what="the pause finished by the new process")
    for group in GROUPS:
        assert suspended(fleet, group) == DEFAULT_PROCESSES, group
    assert "taking over a stale claim" in daemon.output()
    wait_for(lambda: item(fleet)["pausers"]["dynamodb_flag"]["status"] == "done", timeout=10, what="the flag marked done")
    status = json.loads(lbrecon.run("status", "--format", "json").stdout)["targets"][0]
    assert status["paused"] and status["by"] == "lbrecon" and sorted(status["missing"]) == DOOMED

    resume(lbrecon, moto)
    assert_restored(fleet, before)
    assert not paused(fleet)
    assert undone_total(daemon) == 0


def test_a_kill_after_the_plan_before_the_call_is_finished_by_the_next_process(lbrecon, fleet, daemons, moto, holding):
    port = config(lbrecon)
    init(lbrecon, moto)
    before = before_trip(fleet)
    daemon = start(lbrecon, daemons, holding.endpoint, port)
    # The plan (paused, with what is about to be suspended) lands after the kill: no
    # SuspendProcesses is ever sent by this process.
    hold = holding.hold(control_write('"suspending"', '"planned"'), 2.0)
    delete_doomed(fleet)
    assert hold.hit.wait(30), "no plan written"
    kill(daemon)
    assert hold.released.wait(10)
    wait_for(lambda: (item(fleet) or {}).get("paused"), timeout=10, what="the plan landing")
    assert holding.operations().get(("autoscaling", "SuspendProcesses"), 0) == 0
    assert_restored(fleet, before)

    daemon = start(lbrecon, daemons, moto.endpoint, port, log_name="daemon-2.log")
    wait_for(lambda: item(fleet)["pausers"]["autoscaling"]["status"] == "done"
             and groups_of(item(fleet)["pausers"]["autoscaling"]) == GROUPS, timeout=20, what="the pause finished")
    for group in GROUPS:
        assert suspended(fleet, group) == DEFAULT_PROCESSES, group
    resume(lbrecon, moto)
    assert_restored(fleet, before)
    assert undone_total(daemon) == 0


def test_a_kill_after_the_call_before_the_last_write_is_still_undone(lbrecon, fleet, daemons, moto, holding):
    port = config(lbrecon)
    init(lbrecon, moto)
    before = before_trip(fleet)
    daemon = start(lbrecon, daemons, holding.endpoint, port)
    # The last write (every step done, the claim released) never lands.
    hold = holding.hold(control_write('"done"', '"autoscaling"', '"suspended"'), 2.0, drop=True)
    delete_doomed(fleet)
    assert hold.hit.wait(30), "no last write"
    kill(daemon)
    for group in groups_of(item(fleet)["pausers"]["autoscaling"]):
        assert suspended(fleet, group) == DEFAULT_PROCESSES, group
    # Without starting the daemon again: resume waits for the stale claim, then undoes every
    # step written ahead.
    result = resume(lbrecon, moto)
    assert "waiting" in result.stderr
    assert_restored(fleet, before)
    assert not paused(fleet)


def test_a_cycle_deadline_in_the_middle_of_the_pausers(lbrecon, fleet, daemons, moto, holding):
    # The held request lands after the deadline dropped the cycle and before the next cycle
    # reads the groups: that cycle sees the group suspended already, and only what was written
    # ahead says lbrecon did it.
    port = config(lbrecon, interval="5s", deadline="3s")
    init(lbrecon, moto)
    before = before_trip(fleet)
    daemon = start(lbrecon, daemons, holding.endpoint, port)
    # The second group's suspension outlasts the cycle deadline: the cycle is dropped there.
    first = holding.hold(operation("SuspendProcesses"), 0.0)
    second = holding.hold(lambda h, b: first.hit.is_set() and operation("SuspendProcesses")(h, b), 4.0)
    delete_doomed(fleet)
    assert second.hit.wait(30)
    wait_for(lambda: "did not finish within daemon.cycle_deadline" in daemon.output(), timeout=15, what="the deadline")
    # The next cycles of the same process finish what was written ahead.
    wait_for(lambda: item(fleet)["pausers"]["autoscaling"]["status"] == "done"
             and all(suspended(fleet, g) == DEFAULT_PROCESSES for g in GROUPS), timeout=30, what="every group suspended")
    assert not item(fleet)["pausers"]["autoscaling"].get("suspending")
    resume(lbrecon, moto)
    assert_restored(fleet, before)
    time.sleep(2)
    assert undone_total(daemon) == 0


def test_an_operator_resume_racing_a_trip_waits_for_it_and_undoes_everything(lbrecon, fleet, daemons, moto, holding):
    port = config(lbrecon)
    init(lbrecon, moto)
    before = before_trip(fleet)
    daemon = start(lbrecon, daemons, holding.endpoint, port)
    hold = holding.hold(operation("SuspendProcesses"), 8.0)
    delete_doomed(fleet)
    assert hold.hit.wait(30)
    # The trip's pausers are running: the operator's resume waits for their claim.
    result = resume(lbrecon, moto, reason="false alarm")
    # Once the trip's held request has landed and its pausers are done: the acknowledged set
    # does not trip again, and nothing is reported as undone by hand.
    assert hold.released.wait(15)
    time.sleep(3)
    assert not paused(fleet)
    assert_restored(fleet, before)
    assert undone_total(daemon) == 0
    events = [e["event"] for e in item(fleet)["history"]]
    assert events[-2:] == ["trip", "resume"], events
    status = json.loads(lbrecon.run("status", "--format", "json").stdout)["targets"][0]
    assert status["paused"] is False and status["paused_by_pausers"] == {}
    assert "waiting" in result.stderr and "claimed by lbrecon (trip)" in result.stderr


def test_an_operator_pause_racing_a_trip_takes_it_over(lbrecon, fleet, daemons, moto, holding):
    port = config(lbrecon, extra="auto_resume_after = 2")
    init(lbrecon, moto)
    before = before_trip(fleet)
    daemon = start(lbrecon, daemons, holding.endpoint, port)
    hold = holding.hold(operation("SuspendProcesses"), 8.0)
    delete_doomed(fleet)
    assert hold.hit.wait(30)
    lbrecon.endpoint = moto.endpoint
    result = lbrecon.run("pause", "--target", "prod-use1", "--reason", "incident 42", env={**aws_env(moto.endpoint), "LBRECON_ACTOR": "alice"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "waiting" in result.stderr and "now yours" in result.stdout
    taken = item(fleet)
    assert taken["paused"] and taken["by"] == "alice" and taken["reason"] == "incident 42"
    trip_groups = groups_of(taken["pausers"]["autoscaling"])
    assert "asg-00" in trip_groups <= GROUPS
    # The records come back: an operator's pause never resumes by itself.
    fleet.write_records("lb-state", DOOMED)
    samples = lambda: metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="complete") or 0  # noqa: E731
    seen = samples()
    wait_for(lambda: samples() >= seen + 4, timeout=30, what="four more cycles")
    assert paused(fleet) and item(fleet)["by"] == "alice"
    for group in trip_groups:
        assert suspended(fleet, group) == DEFAULT_PROCESSES, group
    lbrecon.run("resume", "--target", "prod-use1", "--reason", "incident over")
    assert_restored(fleet, before)
    assert undone_total(daemon) == 0


def test_an_operator_pause_over_a_guard_pause_stops_auto_resume(lbrecon, fleet, daemons, moto):
    port = config(lbrecon, extra="auto_resume_after = 2")
    init(lbrecon, moto)
    before = before_trip(fleet)
    daemon = start(lbrecon, daemons, moto.endpoint, port)
    delete_doomed(fleet)
    wait_for(lambda: paused(fleet) and item(fleet)["pausers"]["autoscaling"]["status"] == "done", timeout=20, what="the trip")
    result = lbrecon.run("pause", "--target", "prod-use1", "--reason", "keep it paused", env={**aws_env(moto.endpoint), "LBRECON_ACTOR": "bob"})
    assert result.returncode == 0, result.stderr
    fleet.write_records("lb-state", DOOMED)
    cycles = lambda: metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="complete") or 0  # noqa: E731
    seen = cycles()
    wait_for(lambda: cycles() >= seen + 4, timeout=30, what="four clean cycles")
    assert paused(fleet) and item(fleet)["by"] == "bob"
    status = lbrecon.run("status").stdout
    assert "by: bob" in status
    result = lbrecon.run("resume", "--target", "prod-use1", "--reason", "done")
    assert result.returncode == 0, result.stderr
    assert_restored(fleet, before)
    assert undone_total(daemon) == 0


def test_a_mass_deletion_while_the_daemon_is_down_trips_at_once(lbrecon, fleet, daemons, moto):
    # A window short enough that a mark written only when its names change would be expired by
    # the restart; ten cycles to confirm, so only the mass-loss path trips within a few.
    extra = 'mass_loss_window = "6s"'
    port = config(lbrecon, extra=extra)
    text = lbrecon.config_path.read_text().replace("confirm_cycles = 2", "confirm_cycles = 10")
    lbrecon.config_path.write_text(text)
    init(lbrecon, moto)
    daemon = start(lbrecon, daemons, moto.endpoint, port)
    cycles = lambda d: metric(d.metrics()[0], "lbrecon_cycles_total", **T, outcome="complete") or 0  # noqa: E731
    # Longer than the window, with the record set unchanged.
    wait_for(lambda: cycles(daemon) >= 9, timeout=30, what="nine cycles")
    daemon.stop()
    delete_doomed(fleet)
    daemon = start(lbrecon, daemons, moto.endpoint, port, log_name="daemon-2.log")
    wait_for(lambda: paused(fleet), timeout=20, what="the pause")
    assert cycles(daemon) <= 2
    assert "mass loss" in item(fleet)["reason"]
