"""The presence pass first (docs/architecture.md#budget), as real daemons through the fault
proxy: its cadence with a share of ELB calls throttled, a deadline that runs out in the deep
reads, the lease's renewals while the state table's scan is throttled, and the cadence the
daemon keeps when the presence pass needs longer than the interval."""

import tempfile
import time

import pytest
from lbrecon_harness.config import target_config
from lbrecon_harness.faultproxy import FaultProxy
from lbrecon_harness.fleet import Fleet, add_web, clients, create_state_table, wait_for
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port

T = {"target": "prod-use1"}
LEASES = "lbrecon-leases"


def config(port, interval, aws="", extra="", deadline="20s"):
    """A daemon config with the default budget (2 ELB calls a second, burst 10) unless `aws`
    says otherwise."""
    snapshots = tempfile.mkdtemp(prefix="lbrecon-snapshots-")
    return f"""
[daemon]
interval = "{interval}"
jitter = 0.0
cycle_deadline = "{deadline}"

[http]
listen = "127.0.0.1:{port}"
{target_config()}
[snapshots]
dir = "{snapshots}"

[aws]
{aws}
{extra}
"""


def start(lbrecon, daemons, proxy, **kw):
    port = free_port()
    lbrecon.write_config(config(port, **kw))
    lbrecon.endpoint = proxy.endpoint
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    return daemon


@pytest.fixture
def fleet(moto):
    fleet = Fleet(moto.endpoint)
    for i in range(8):
        add_web(fleet, f"web-{i:02d}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    return fleet


@pytest.fixture(params=[False, True], ids=["moto", "aws-faithful"])
def either_proxy(request, moto):
    """The fault proxy as moto answers, and in its AWS-faithful mode (AWS's throttle shape, its
    page sizes and ARN forms)."""
    server = FaultProxy(moto.endpoint, faithful=request.param)
    yield server
    server.stop()


def cycles(daemon, outcome):
    return metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome=outcome) or 0


def complete_cycle_times(daemon, seconds):
    """When each complete cycle was seen to end, polling /metrics for `seconds`."""
    seen, times = cycles(daemon, "complete"), []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = cycles(daemon, "complete")
        if now > seen:
            times.extend([time.monotonic()] * (now - seen))
            seen = now
        time.sleep(0.1)
    return times


def test_the_presence_pass_keeps_the_interval_with_a_third_of_elb_calls_throttled(lbrecon, fleet, daemons,
                                                                                  either_proxy):
    proxy = either_proxy
    # Eight load balancers' deep reads need ~50 calls: at the default 2 calls a second, more
    # than the interval's budget many times over. One ELB call in three is throttled.
    proxy.throttle_share("elasticloadbalancing", 3)
    daemon = start(lbrecon, daemons, proxy, interval="3s")
    wait_for(lambda: cycles(daemon, "complete") >= 1, timeout=30, what="a first complete cycle")
    times = complete_cycle_times(daemon, 24)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) >= 5, f"{len(times)} complete cycles in 24 s at a 3 s interval"
    # A cycle every interval, within slack for the throttled presence pages' retries.
    assert max(gaps) < 6.5, f"gaps between complete cycles: {[round(g, 1) for g in gaps]}"
    assert cycles(daemon, "incomplete") == 0, daemon.output()
    samples, _ = daemon.metrics()
    throttled = metric(samples, "lbrecon_aws_requests_total", **T, service="elasticloadbalancing",
                       operation="DescribeLoadBalancers", outcome="throttled") or 0
    assert throttled >= 1, "the share of throttled calls reached the presence pass"


def test_a_deadline_in_the_deep_reads_ends_them_not_the_cycle(lbrecon, fleet, daemons, either_proxy):
    proxy = either_proxy
    # Every deep read hangs longer than the cycle's deadline: the presence pass and the guard
    # still finish, every cycle is complete, and a lost record is still seen.
    proxy.fail("DescribeListeners", "delay", times=100_000, delay=6.0)
    fast = "elb_requests_per_second = 1000\nelb_burst = 1000\ndynamodb_requests_per_second = 1000\n"
    daemon = start(lbrecon, daemons, proxy, interval="2s", aws=fast, deadline="4s")
    wait_for(lambda: cycles(daemon, "complete") >= 3, timeout=30, what="complete cycles")
    fleet.delete_record("lb-state", "web-03")
    wait_for(lambda: metric(daemon.metrics()[0], "lbrecon_drift_load_balancers", **T, kind="missing_record") == 1,
             timeout=30, what="the missing record seen")
    assert cycles(daemon, "incomplete") == 0, daemon.output()
    assert "the deep reads ran out of time" in daemon.output()
    assert "did not finish within daemon.cycle_deadline" not in daemon.output()


def test_the_lease_renews_while_the_state_tables_scan_is_throttled(lbrecon, fleet, daemons, proxy):
    clients(fleet.endpoint, fleet.region)["dynamodb"].create_table(
        TableName=LEASES,
        KeySchema=[{"AttributeName": "target", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "target", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    election = f'[leader_election]\ntable = "{LEASES}"\nlease = "3s"\n'
    # A DynamoDB budget of one call a second, every scan throttled: the bucket is as slow as it
    # gets, and the lease's renewals must not wait on it.
    daemon = start(lbrecon, daemons, proxy, interval="1s", aws="dynamodb_requests_per_second = 1\n",
                   extra=election, deadline="4s")
    wait_for(lambda: metric(daemon.metrics()[0], "lbrecon_leader", **T) == 1, timeout=30, what="leadership")
    proxy.fail("Scan", "throttle", times=100_000)
    lease = clients(fleet.endpoint, fleet.region)["dynamodb"]
    versions = set()
    end = time.monotonic() + 12
    while time.monotonic() < end:
        assert metric(daemon.metrics()[0], "lbrecon_leader", **T) == 1, daemon.output()
        item = lease.get_item(TableName=LEASES, Key={"target": {"S": "prod-use1"}}, ConsistentRead=True)["Item"]
        versions.add(item["version"]["S"])
        time.sleep(0.5)
    # A heartbeat is a third of the lease: about a dozen renewals in 12 s.
    assert len(versions) >= 6, f"{len(versions)} lease versions in 12 s"
    assert cycles(daemon, "incomplete") >= 1
    assert "the lease is no longer held" not in daemon.output()


def test_a_presence_pass_longer_than_the_interval_sets_the_cadence(lbrecon, fleet, daemons, proxy):
    # Two presence calls a cycle at a quarter of a call a second, and a page of the scan at 25 a
    # second: 8.04 s, kept as 8.1 s, not the 1 s interval.
    daemon = start(lbrecon, daemons, proxy, interval="1s", aws="elb_requests_per_second = 0.25\nelb_burst = 1\n")
    wait_for(lambda: "keeping a cadence of 8s" in daemon.output(), timeout=30, what="the cadence warning")
    line = next(line for line in daemon.output().splitlines() if "keeping a cadence of 8s" in line)
    for figure in ("2 ELB calls and 1 scan pages a cycle", "8 load balancers, ", "and 8 records here",
                   "at 0.25 ELB and 25 DynamoDB calls a second", "daemon.interval (1s)"):
        assert figure in line, line
