"""Several replicas (docs/architecture.md#replicas), as real processes against moto: one leader per target, handover
on kill -9 and on SIGTERM, a frozen leader that must not act when it wakes, and fencing."""

import signal
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
import requests
from lbrecon_harness.config import daemon_config
from lbrecon_harness.faultproxy import FaultProxy
from lbrecon_harness.fleet import Fleet, add_web, clients, control_item, create_state_table, wait_for
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port

LEASE = 4.0
INTERVAL = 2.0
T = "prod-use1"
LEASES = "lbrecon-leases"

EXTRA = f"""
[leader_election]
table = "{LEASES}"
lease = "{LEASE:g}s"

[guard]
min_missing = 1
max_missing_ratio = 0.05
confirm_cycles = 2
new_load_balancer_grace = "0s"

[[guard.pausers]]
type = "dynamodb_flag"
"""

# What a standby may send: the start-up check of the state table, and the lease table's own
# calls (its lease item, its replica item, and the read of the whole table that shares the
# targets between replicas).
STANDBY_OPERATIONS = {("dynamodb", "DescribeTable"), ("dynamodb", "GetItem"), ("dynamodb", "PutItem"),
                      ("dynamodb", "Scan")}


class Replica:
    """One `lbrecon run` with its own config, port and fault proxy (to see what it sends)."""

    def __init__(self, lbrecon, daemons, name, upstream):
        self.name = name
        self.proxy = FaultProxy(upstream)
        port = free_port()
        config = lbrecon.tmp_path / f"{name}.toml"
        config.write_text(daemon_config(port, interval=f"{INTERVAL:g}s", extra=EXTRA))
        runner = SimpleNamespace(binary=lbrecon.binary, config_path=config, tmp_path=lbrecon.tmp_path,
                                 endpoint=self.proxy.endpoint)
        self.daemon = daemons.start(runner, port, log_name=f"{name}.log")

    def leader(self):
        """1 or 0 as the replica reports it; None when it does not answer."""
        if self.daemon.process.poll() is not None:
            return None
        try:
            return metric(self.daemon.metrics()[0], "lbrecon_leader", target=T)
        except requests.RequestException:
            return None

    def complete_cycles(self):
        return metric(self.daemon.metrics()[0], "lbrecon_cycles_total", target=T, outcome="complete") or 0

    def stop(self):
        self.daemon.stop()
        self.proxy.stop()


@pytest.fixture
def fleet(moto, lbrecon):
    fleet = Fleet(moto.endpoint)
    for i in range(8):
        add_web(fleet, f"web-{i:02d}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    lbrecon.write_config(daemon_config(free_port(), extra=EXTRA))
    result = lbrecon.run("init", "--target", T, "--approve", "CHG-1")
    assert result.returncode == 0, result.stderr
    return fleet


@pytest.fixture
def replicas(lbrecon, daemons, moto):
    started = []

    def start(count):
        for i in range(count):
            started.append(Replica(lbrecon, daemons, f"replica-{len(started)}", moto.endpoint))
        return started[-count:]

    yield start
    for replica in started:
        replica.stop()


def one_leader(replicas):
    """The one replica reporting 1 while every other live one reports 0, else None."""
    states = [(r, r.leader()) for r in replicas]
    leaders = [r for r, state in states if state == 1]
    standbys = [r for r, state in states if state == 0]
    alive = [r for r, state in states if state is not None]
    if len(leaders) == 1 and len(leaders) + len(standbys) == len(alive):
        return leaders[0]
    return None


def lease_item(fleet):
    return clients(fleet.endpoint, fleet.region)["dynamodb"].get_item(
        TableName=LEASES, Key={"target": {"S": T}}, ConsistentRead=True).get("Item")


def test_replicas_started_together_elect_exactly_one_leader(fleet, replicas):
    group = replicas(3)
    leader = wait_for(lambda: one_leader(group), timeout=30, what="one leader")
    for replica in group:
        replica.daemon.wait_ready()
    # It stays that way, and only the leader reads AWS.
    for replica in group:
        replica.proxy.reset_counts()
    before = leader.complete_cycles()
    deadline = time.monotonic() + 3 * INTERVAL
    while time.monotonic() < deadline:
        assert one_leader(group) is leader
        time.sleep(0.2)
    assert leader.complete_cycles() > before
    assert any(service == "elasticloadbalancing" for service, _ in leader.proxy.operations())
    for standby in group:
        if standby is leader:
            continue
        assert set(standby.proxy.operations()) <= STANDBY_OPERATIONS, standby.proxy.operations()
        assert {table for _, table in standby.proxy.table_operations()} <= {LEASES}
        assert standby.daemon.get("/readyz").status_code == 200
    item = lease_item(fleet)
    assert item["owner"]["S"].split("/")[1] == str(leader.daemon.process.pid)


def test_kill_9_of_the_leader_hands_over_within_the_lease_and_one_interval(fleet, replicas):
    group = replicas(2)
    leader = wait_for(lambda: one_leader(group), timeout=30, what="one leader")
    other = next(r for r in group if r is not leader)
    leader.daemon.process.kill()
    killed = time.monotonic()
    leader.daemon.process.wait()
    wait_for(lambda: other.leader() == 1, timeout=LEASE + INTERVAL + 5, interval=0.05, what="the standby to lead")
    handover = time.monotonic() - killed
    assert handover <= LEASE + INTERVAL, f"handover took {handover:.2f}s"
    # The new leader reconciles.
    before = other.complete_cycles()
    wait_for(lambda: other.complete_cycles() > before, timeout=3 * INTERVAL, what="a cycle of the new leader")


def test_sigterm_releases_the_lease_at_once(fleet, replicas):
    group = replicas(2)
    leader = wait_for(lambda: one_leader(group), timeout=30, what="one leader")
    other = next(r for r in group if r is not leader)
    leader.daemon.signal(signal.SIGTERM)
    assert leader.daemon.wait(timeout=30) == 0
    exited = time.monotonic()
    wait_for(lambda: other.leader() == 1, timeout=LEASE + INTERVAL, interval=0.05, what="the standby to lead")
    # Measured from the leader's exit, not the signal: the leader first finishes the cycle in
    # flight, which takes what it takes on a loaded machine. Waiting for the lease to run out
    # would take at least two thirds of it after the last renewal, and renewals are a third of
    # it apart, so at least a third of it after the exit; a release is picked up at the
    # standby's next read, every sixth of it.
    pickup = time.monotonic() - exited
    assert pickup < LEASE / 3, f"the standby led {pickup:.2f}s after the leader exited"
    assert "released the lease" in leader.daemon.output()


def test_a_frozen_leader_does_not_act_when_it_wakes(fleet, replicas):
    group = replicas(2)
    frozen = wait_for(lambda: one_leader(group), timeout=30, what="one leader")
    other = next(r for r in group if r is not frozen)
    frozen.daemon.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: other.leader() == 1, timeout=LEASE + INTERVAL + 5, what="the standby to lead")
        # State data goes missing; the new leader pauses.
        for name in ("web-01", "web-04"):
            fleet.delete_record("lb-state", name)
        wait_for(lambda: (control_item(fleet, "lb-state-control", T) or {}).get("paused"), timeout=30,
                 what="the pause")
        version = control_item(fleet, "lb-state-control", T)["version"]
        frozen.proxy.reset_counts()
    finally:
        frozen.daemon.signal(signal.SIGCONT)
    wait_for(lambda: frozen.leader() == 0, timeout=10, what="the woken replica to stand by")
    time.sleep(INTERVAL)
    # Woken past its lease it wrote nothing and paused nothing. (A request the freeze caught
    # between the lease check and the socket may still leave: a read, never a write.)
    writes = {op for op, table in frozen.proxy.table_operations() if table != LEASES and op != "GetItem"}
    assert not writes, frozen.proxy.table_operations()
    assert not any(service == "autoscaling" for service, _ in frozen.proxy.operations())
    # And from then on it sends nothing but the lease's own calls.
    frozen.proxy.reset_counts()
    time.sleep(2 * INTERVAL)
    assert set(frozen.proxy.operations()) <= STANDBY_OPERATIONS, frozen.proxy.operations()
    assert {table for _, table in frozen.proxy.table_operations()} <= {LEASES}
    assert one_leader(group) is other
    item = control_item(fleet, "lb-state-control", T)
    assert item["paused"] and item["version"] >= version


def test_a_replica_that_lost_its_lease_writes_no_pause(fleet, lbrecon, replicas):
    """Another holder takes the lease over (a replica this test plays); the daemon must not
    pause while that holder renews, however much state is missing, and must once it is gone."""
    (replica,) = replicas(1)
    wait_for(lambda: replica.leader() == 1, timeout=30, what="the replica to lead")
    dynamodb = clients(fleet.endpoint, fleet.region)["dynamodb"]
    stop = threading.Event()

    def rival():
        # Take the lease as the lock-client protocol lets an expired one be taken: overwrite it
        # on its current version, then renew faster than the replica reads.
        while not stop.is_set():
            current = lease_item(fleet)
            try:
                dynamodb.put_item(
                    TableName=LEASES,
                    Item={"target": {"S": T}, "owner": {"S": "rival"}, "version": {"S": uuid.uuid4().hex},
                          "lease_ms": {"N": str(int(LEASE * 1000))}, "released": {"BOOL": False}},
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": current["version"]},
                )
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=rival, daemon=True)
    thread.start()
    try:
        wait_for(lambda: replica.leader() == 0, timeout=LEASE + 5, what="the replica to lose the lease")
        for name in ("web-02", "web-05", "web-06"):
            fleet.delete_record("lb-state", name)
        time.sleep(3 * INTERVAL)
        assert not (control_item(fleet, "lb-state-control", T) or {}).get("paused")
    finally:
        stop.set()
        thread.join()
    # The rival is gone: after its lease runs out the replica leads again and pauses.
    wait_for(lambda: replica.leader() == 1, timeout=LEASE + INTERVAL + 5, what="the replica to lead again")
    wait_for(lambda: (control_item(fleet, "lb-state-control", T) or {}).get("paused"), timeout=30,
             what="the pause")
