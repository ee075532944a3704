"""`lbrecon run` through the fault proxy's AWS-faithful mode: what the daemon does with AWS's
answers where moto's differ (README, "Development"), and the deep-check age while reads fail."""

import time

import pytest
from lbrecon_harness.config import daemon_config
from lbrecon_harness.faultproxy import FaultProxy
from lbrecon_harness.fleet import Fleet, create_state_table, wait_for
from lbrecon_harness.lbrecon import Lbrecon
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port

T = {"target": "prod-use1"}


@pytest.fixture
def faithful(moto, tmp_path):
    server = FaultProxy(moto.endpoint, faithful=True)
    yield server, Lbrecon(server.endpoint, tmp_path)
    server.stop()


@pytest.fixture
def fleet(moto):
    fleet = Fleet(moto.endpoint)
    fleet.alb("web-0")
    fleet.nlb("db-0")
    fleet.gwlb("gw-0")
    fleet.gwlb("gw-1")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    return fleet


def start(lbrecon, daemons, extra=""):
    port = free_port()
    lbrecon.write_config(daemon_config(port, extra=extra))
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    return daemon


def complete_cycles(daemon):
    return metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="complete") or 0


def test_gateway_load_balancers_stay_in_sync_cycle_after_cycle(faithful, fleet, daemons):
    proxy, lbrecon = faithful
    daemon = start(lbrecon, daemons)
    first = complete_cycles(daemon)
    wait_for(lambda: complete_cycles(daemon) >= first + 3, what="three more complete cycles")
    samples, _ = daemon.metrics()
    assert metric(samples, "lbrecon_drift_load_balancers", **T, kind="in_sync") == 4
    assert metric(samples, "lbrecon_drift_load_balancers", **T, kind="changed") == 0
    assert metric(samples, "lbrecon_load_balancer_drift", **T, name="gw-0", kind="changed") is None
    drift = daemon.get("/drift").json()
    assert drift["targets"][0]["load_balancers"] == [], drift
    # A gateway listener is never asked for rules; the one rule read per cycle is the network
    # load balancer's listener's and the application load balancer's two.
    assert (
        metric(samples, "lbrecon_aws_requests_total", **T, service="elasticloadbalancing",
               operation="DescribeRules", outcome="error")
        is None
    )


def test_the_deep_check_age_keeps_growing_while_the_scan_fails(faithful, fleet, daemons):
    proxy, lbrecon = faithful
    daemon = start(lbrecon, daemons, extra="max_attempts = 1")
    wait_for(lambda: complete_cycles(daemon) >= 2, what="two complete cycles")
    age = metric(daemon.metrics()[0], "lbrecon_deep_check_age_seconds", **T)
    assert age is not None and age <= 2, age

    proxy.fail("Scan", "500", times=100_000)

    def incomplete():
        return metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="incomplete") or 0

    wait_for(lambda: incomplete() >= 1, what="an incomplete cycle")
    ages = []
    for _ in range(4):
        ages.append(metric(daemon.metrics()[0], "lbrecon_deep_check_age_seconds", **T))
        time.sleep(1.1)
    assert incomplete() >= 3
    # Never reset to 0 by an incomplete cycle: it grows with the time since the last deep read.
    assert all(later >= earlier for earlier, later in zip(ages, ages[1:])), ages
    assert ages[-1] >= ages[0] + 2, ages
    assert ages[-1] >= 3, ages

    proxy.clear()

    def recovered():
        age = metric(daemon.metrics()[0], "lbrecon_deep_check_age_seconds", **T)
        return age is not None and age <= 2

    wait_for(recovered, what="the age back down after a complete cycle")
