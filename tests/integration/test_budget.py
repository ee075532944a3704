"""The API budget and the call accounting of SPEC 12, counted by the proxy."""

import json
import math
import re

from conftest import target_config
from fleet import Fleet, create_state_table


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
    from conftest import aws_env

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
