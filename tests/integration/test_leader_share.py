"""Replicas share the targets (docs/leader-election.md#sharing), as real processes against moto:
three replicas and six targets settle at two leases each; after one is killed (SIGKILL, so it
releases nothing) the two left settle at three each once its leases run out; and at no moment
do two replicas report `lbrecon_leader 1` for the same target."""

import tempfile
import threading
import time
from types import SimpleNamespace

import pytest
import requests
from lbrecon_harness.lbrecon import Daemon
from lbrecon_harness.metrics import parse_metrics
from lbrecon_harness.moto_server import free_port
from lbrecon_harness.fleet import Fleet, add_web, clients, create_state_table, wait_for

LEASE = 4.0
INTERVAL = 2.0
TARGETS = [f"t{i}" for i in range(6)]
LEASES = "lbrecon-leases"
REPLICA_PREFIX = "replica#"


def config(port, snapshots):
    targets = "".join(
        f"""
[[targets]]
name = "{name}"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"
"""
        for name in TARGETS
    )
    return f"""
[daemon]
interval = "{INTERVAL:g}s"
jitter = 0.0
cycle_deadline = "20s"

[http]
listen = "127.0.0.1:{port}"
{targets}
[snapshots]
dir = "{snapshots}"

[aws]
elb_requests_per_second = 1000
elb_burst = 1000
dynamodb_requests_per_second = 1000
concurrency = 4

[leader_election]
table = "{LEASES}"
lease = "{LEASE:g}s"
"""


class Replica:
    def __init__(self, lbrecon, name):
        self.name = name
        self.port = free_port()
        path = lbrecon.tmp_path / f"{name}.toml"
        path.write_text(config(self.port, tempfile.mkdtemp(prefix="lbrecon-snapshots-")))
        runner = SimpleNamespace(binary=lbrecon.binary, config_path=path, tmp_path=lbrecon.tmp_path,
                                 endpoint=lbrecon.endpoint)
        self.daemon = Daemon(runner, self.port, log_name=f"{name}.log")

    def leading(self):
        """{target: 1 or 0} as the replica reports it; None when it does not answer."""
        if self.daemon.process.poll() is not None:
            return None
        try:
            samples, _ = parse_metrics(self.daemon.get("/metrics", timeout=2).text)
        except requests.RequestException:
            return None
        return {dict(labels)["target"]: value for (name, labels), value in samples.items()
                if name == "lbrecon_leader"}

    @property
    def pid(self):
        return self.daemon.process.pid


class Watch:
    """Polls every replica's /metrics in the background and records any moment two replicas
    report 1 for the same target. Each round polls every replica twice, in the same order; a
    replica reporting 1 at both its polls while another reports 1 in between is a double leader
    (a hand-over between two polls of different replicas is not)."""

    def __init__(self, replicas):
        self.replicas = replicas
        self.overlaps = []
        self.rounds = 0
        self.latest = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            replicas = list(self.replicas)  # a test may start more meanwhile
            polls = []  # (replica index, {target: value} or None), in time order
            for _ in range(2):
                for i, replica in enumerate(replicas):
                    polls.append((i, replica.leading()))
            self.check(replicas, polls)
            self.latest = {i: state for i, state in polls[len(replicas):]}
            self.rounds += 1
            time.sleep(0.05)

    def check(self, replicas, polls):
        n = len(replicas)
        for x in range(n):
            first, second = polls[x][1], polls[x + n][1]
            if not first or not second:
                continue
            for y_at in range(x + 1, x + n):
                y, between = polls[y_at]
                if between is None:
                    continue
                for target in TARGETS:
                    if first.get(target) == 1 and second.get(target) == 1 and between.get(target) == 1:
                        self.overlaps.append((target, replicas[x].name, replicas[y].name))

    def counts(self, alive):
        """Leases each replica in `alive` reports holding, by the latest complete round."""
        latest = self.latest
        result = []
        for i, replica in enumerate(self.replicas):
            if replica not in alive:
                continue
            state = latest.get(i)
            result.append(None if state is None else sum(1 for t in TARGETS if state.get(t) == 1))
        return result

    def close(self):
        self.stop.set()
        self.thread.join(timeout=30)


def lease_items(endpoint):
    dynamodb = clients(endpoint, "us-east-1")["dynamodb"]
    items = dynamodb.scan(TableName=LEASES, ConsistentRead=True)["Items"]
    return {item["target"]["S"]: item for item in items}


@pytest.fixture
def shared(moto, lbrecon):
    fleet = Fleet(moto.endpoint)
    for i in range(2):
        add_web(fleet, f"web-{i:02d}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    lbrecon.write_config(config(free_port(), tempfile.mkdtemp(prefix="lbrecon-snapshots-")))
    for target in TARGETS:
        result = lbrecon.run("init", "--target", target, "--approve", "CHG-1")
        assert result.returncode == 0, result.stderr
    group = []
    yield fleet, group
    for replica in group:
        replica.daemon.stop()


def test_three_replicas_share_six_targets_and_two_share_them_after_a_kill(shared, lbrecon):
    fleet, group = shared
    for i in range(3):
        group.append(Replica(lbrecon, f"replica-{i}"))
    for replica in group:
        replica.daemon.wait_ready()
    watch = Watch(group)
    try:
        started = time.monotonic()
        wait_for(lambda: watch.counts(group) == [2, 2, 2], timeout=90, interval=0.2,
                 what=f"two leases each (last seen {watch.counts(group)})")
        settled = time.monotonic() - started
        # The lease table says the same: two live leases per replica.
        owners = [item["owner"]["S"] for key, item in lease_items(fleet.endpoint).items()
                  if not key.startswith(REPLICA_PREFIX) and not item["released"]["BOOL"]]
        assert sorted(owner.split("/")[1] for owner in owners) == sorted(
            str(r.pid) for r in group for _ in range(2)), owners
        # It stays so.
        rounds = watch.rounds
        wait_for(lambda: watch.rounds >= rounds + 10, timeout=60, what="more rounds")
        assert watch.counts(group) == [2, 2, 2]

        killed = group[0]
        killed.daemon.process.kill()
        killed.daemon.process.wait()
        at = time.monotonic()
        # It released nothing: its replica item and its two leases still name it.
        items = lease_items(fleet.endpoint)
        left = [key for key, item in items.items()
                if item["owner"]["S"].split("/")[1] == str(killed.pid) and not item.get("released", {}).get("BOOL")]
        assert len(left) == 3 and sum(key.startswith(REPLICA_PREFIX) for key in left) == 1, left

        survivors = group[1:]
        # Every target is led again within the failover bound: the lease and one interval.
        wait_for(lambda: sum(n or 0 for n in watch.counts(survivors)) == len(TARGETS), timeout=90, interval=0.05,
                 what=f"every target led by the two left (last seen {watch.counts(survivors)})")
        failover = time.monotonic() - at
        assert failover <= LEASE + INTERVAL, f"failover took {failover:.1f}s"
        wait_for(lambda: watch.counts(survivors) == [3, 3], timeout=90, interval=0.1,
                 what=f"three leases each for the two left (last seen {watch.counts(survivors)})")
        took = time.monotonic() - at
        print(f"settled at 2/2/2 in {settled:.1f}s; every target led {failover:.1f}s after the kill, "
              f"3/3 {took:.1f}s after it; "
              f"{watch.rounds} rounds of polls")
        # The killed replica's leases run out after a lease (plus a standby poll), then the two
        # left take them, spread by share; a few intervals for a hand-over on a loaded machine.
        assert took <= LEASE + 3 * INTERVAL, f"three each took {took:.1f}s after the kill"
        rounds = watch.rounds
        wait_for(lambda: watch.rounds >= rounds + 10, timeout=60, what="more rounds")
        assert watch.counts(survivors) == [3, 3]
        owners = [item["owner"]["S"].split("/")[1] for key, item in lease_items(fleet.endpoint).items()
                  if not key.startswith(REPLICA_PREFIX) and not item["released"]["BOOL"]]
        assert sorted(owners) == sorted(str(r.pid) for r in survivors for _ in range(3)), owners
    finally:
        watch.close()
    assert not watch.overlaps, f"two replicas reported leading the same target: {watch.overlaps[:5]}"
    assert watch.rounds > 20


def test_replicas_started_later_get_their_share_by_hand_overs(shared, lbrecon):
    fleet, group = shared
    group.append(Replica(lbrecon, "replica-0"))
    group[0].daemon.wait_ready()
    watch = Watch(group)
    try:
        wait_for(lambda: watch.counts(group) == [6], timeout=60, interval=0.2,
                 what=f"the first replica to hold every lease (last seen {watch.counts(group)})")
        started = time.monotonic()
        for i in (1, 2):
            group.append(Replica(lbrecon, f"replica-{i}"))
        wait_for(lambda: watch.counts(group) == [2, 2, 2], timeout=90, interval=0.2,
                 what=f"two leases each (last seen {watch.counts(group)})")
        took = time.monotonic() - started
        print(f"the first replica handed four leases over in {took:.1f}s")
        rounds = watch.rounds
        wait_for(lambda: watch.rounds >= rounds + 10, timeout=60, what="more rounds")
        assert watch.counts(group) == [2, 2, 2]
        # The first replica handed four over, one at a time; the others none.
        assert group[0].daemon.output().count("handed the lease over") >= 4
        assert all("handed the lease over" not in r.daemon.output() for r in group[1:])
    finally:
        watch.close()
    assert not watch.overlaps, f"two replicas reported leading the same target: {watch.overlaps[:5]}"
