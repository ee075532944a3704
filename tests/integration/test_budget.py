"""The API budget and the call accounting of docs/architecture.md#budget, counted by the proxy."""

import json
import math
import re
import time

import boto3
from lbrecon_harness import fleet as fleet_module
from lbrecon_harness.config import target_config
from lbrecon_harness.fleet import Fleet, create_state_table, wait_for
from lbrecon_harness.moto_server import free_port


def max_in_window(times, window=1.0):
    times = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def fleet_with(moto, albs, bare):
    fleet = Fleet(moto.endpoint)
    for i in range(albs):
        fleet.alb(f"web-{i:03d}")
    for i in range(bare):
        fleet.bare(f"lb-{i:04d}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    return fleet


def test_a_full_read_makes_exactly_the_spec_minimum(lbrecon, moto, proxy):
    # 445 load balancers are deep-read in two batches of 250 and 195 (moto lists them in the
    # order they were made). The first batch names 302 ARNs for DescribeTags (26 + 52 target
    # groups + 224): the 2 beyond full calls of 20 go with the second batch, so batching costs
    # no call (302 and 195 read apart would take 26 calls, not ceil(497 / 20) = 25).
    albs, bare = 26, 419
    fleet_with(moto, albs, bare)
    n = albs + bare
    listeners = 2 * albs  # every application load balancer here has two listeners
    t = 2 * albs  # and two target groups
    lbrecon.endpoint = proxy.endpoint
    lbrecon.write_config(
        "[daemon]\ninterval = \"30s\"\n" + target_config()
        + "\n[aws]\nelb_requests_per_second = 1000\nelb_burst = 1000\ndynamodb_requests_per_second = 1000\n"
    )
    env = None
    from lbrecon_harness.lbrecon import aws_env

    env = aws_env(proxy.endpoint)
    env["LBRECON_LOG"] = "info"
    result = lbrecon.run("check", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    elb = {op: count for (service, op), count in proxy.operations().items() if service == "elasticloadbalancing"}

    # Pages: moto honours PageSize for DescribeLoadBalancers; it ignores it for
    # DescribeTargetGroups and answers every group in one page, which is also what
    # ceil(T/400) is for T <= 400.
    assert elb["DescribeLoadBalancers"] == math.ceil(n / 400) == 2
    assert elb["DescribeTargetGroups"] == math.ceil(t / 400) == 1
    assert elb["DescribeListeners"] == n
    assert elb["DescribeRules"] == listeners
    assert elb["DescribeTags"] == math.ceil((n + t) / 20)
    assert elb["DescribeLoadBalancerAttributes"] == n
    assert elb["DescribeTargetGroupAttributes"] == t
    assert "DescribeListenerCertificates" not in elb and "DescribeTargetHealth" not in elb
    expected = math.ceil(n / 400) + math.ceil(t / 400) + n + listeners + math.ceil((n + t) / 20) + n + t
    assert sum(elb.values()) == expected
    # lbrecon says how many it made.
    said = re.search(r"full read: (\d+) ELB calls", result.stderr)
    assert said and int(said.group(1)) == expected, result.stderr[-2000:]
    # The state table is scanned in pages of at most 250 items, and every record is read.
    assert proxy.operations()[("dynamodb", "Scan")] == math.ceil(n / 250) == 2
    report = json.loads(result.stdout)["targets"][0]
    assert report["summary"]["recorded"] == n and report["summary"]["in_sync"] == n


def test_the_budget_caps_the_rate_and_is_shared_by_targets_of_a_region(lbrecon, moto, proxy):
    fleet_with(moto, 4, 20)
    create_state_table(moto.endpoint, "us-east-1", "lb-state-2")
    lbrecon.endpoint = proxy.endpoint
    lbrecon.write_config(
        "[daemon]\ninterval = \"30s\"\n" + target_config("a") + target_config("b", state_table="lb-state-2",
                                                                          control_table="lb-ctl-2")
        + "\n[aws]\nelb_requests_per_second = 8\nelb_burst = 4\n"
    )
    result = lbrecon.run("check", "--format", "json")
    assert result.returncode == 2, result.stderr[-2000:]
    times = proxy.times("elasticloadbalancing")
    assert len(times) > 60
    # Both targets together: at most the burst plus one second's rate in any second.
    assert max_in_window(times) <= 4 + 8 + 1, max_in_window(times)


# moto's own account: the default credentials' (`GetCallerIdentity` answers it), and the account
# of any role of it that moto lets a test assume.
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
RATE = 2
BURST = 4
WINDOW = 6.0


def two_target_config(port, role_arn, snapshots):
    """One target on the default credentials, one through `role_arn`, both in us-east-1, each
    with a new cycle every second: each alone wants more ELB calls than the budget allows."""
    return f"""
[daemon]
interval = "1s"
jitter = 0.0
cycle_deadline = "20s"

[http]
listen = "127.0.0.1:{port}"

[[targets]]
name = "default-creds"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-ctl-a"

[[targets]]
name = "through-role"
region = "us-east-1"
state_table = "lb-state-2"
control_table = "lb-ctl-b"
role_arn = "{role_arn}"

[snapshots]
dir = "{snapshots}"

[aws]
elb_requests_per_second = {RATE}
elb_burst = {BURST}
"""


def fleet_in(endpoint, account, monkeypatch, table):
    """A few load balancers and their records in `account`, built with credentials of a role
    there (moto keeps each account's resources apart)."""
    with monkeypatch.context() as m:
        if account != ACCOUNT:
            sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", **fleet_module.TEST_CREDENTIALS)
            credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/builder",
                                          RoleSessionName="fleet")["Credentials"]
            m.setitem(fleet_module.TEST_CREDENTIALS, "aws_access_key_id", credentials["AccessKeyId"])
            m.setitem(fleet_module.TEST_CREDENTIALS, "aws_secret_access_key", credentials["SecretAccessKey"])
            m.setitem(fleet_module.TEST_CREDENTIALS, "aws_session_token", credentials["SessionToken"])
        fleet = Fleet(endpoint)
        for i in range(6):
            fleet.bare(f"lb-{account}-{i}")
        create_state_table(endpoint, "us-east-1", table)
        fleet.write_records(table)


def elb_rate_of_two_targets(lbrecon, moto, proxy, daemons, monkeypatch, role_account):
    """ELB calls a second of a daemon with two targets in one region, the second through a role
    of `role_account`, measured by the proxy over WINDOW seconds once the burst is spent."""
    fleet_in(moto.endpoint, ACCOUNT, monkeypatch, "lb-state")
    fleet_in(moto.endpoint, role_account, monkeypatch, "lb-state-2")
    port = free_port()
    lbrecon.endpoint = proxy.endpoint
    lbrecon.write_config(two_target_config(port, f"arn:aws:iam::{role_account}:role/lbrecon-reader",
                                           lbrecon.tmp_path / "snapshots"))
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    # Both targets read (the role was assumed), and the burst is spent.
    wait_for(lambda: len(proxy.times("elasticloadbalancing")) >= 2 * BURST + 4, timeout=20,
             what="both targets reading")
    time.sleep(1.0)
    start = time.monotonic()
    time.sleep(WINDOW)
    calls = [t for t in proxy.times("elasticloadbalancing") if start <= t < start + WINDOW]
    assert daemon.process.poll() is None, daemon.output()[-3000:]
    # The default credentials' account was asked for (once: one process).
    assert proxy.operations().get(("sts", "GetCallerIdentity")) == 1, proxy.operations()
    return len(calls) / WINDOW, daemon


def test_a_role_of_the_default_credentials_account_shares_its_budget(lbrecon, moto, proxy, daemons, monkeypatch):
    # docs/architecture.md#budget: the budget is keyed by account and region, never by the role. Measured before
    # the fix: 4.0 ELB calls/s for a budget of 2, one bucket each.
    rate, daemon = elb_rate_of_two_targets(lbrecon, moto, proxy, daemons, monkeypatch, ACCOUNT)
    print(f"one account: {rate:.2f} ELB calls/s for a budget of {RATE}")
    # At most the rate, and the tokens one window could hold back (the burst).
    assert rate <= RATE + BURST / WINDOW, (rate, daemon.output()[-3000:])
    assert rate >= RATE / 2, rate


def test_a_role_of_another_account_has_a_budget_of_its_own(lbrecon, moto, proxy, daemons, monkeypatch):
    rate, daemon = elb_rate_of_two_targets(lbrecon, moto, proxy, daemons, monkeypatch, OTHER_ACCOUNT)
    print(f"two accounts: {rate:.2f} ELB calls/s for a budget of {RATE} each")
    assert RATE + BURST / WINDOW < rate <= 2 * RATE + 2 * BURST / WINDOW, (rate, daemon.output()[-3000:])
