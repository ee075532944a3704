"""End to end with a real Prometheus (Debian's package): it scrapes a running `lbrecon run`
with the shipped alert rules; a drift makes the drift alert fire, undoing it resolves it."""

import shutil
import subprocess
import time

import pytest
import requests
from lbrecon_harness.config import daemon_config
from lbrecon_harness.fleet import STRICT_SSL_POLICY, SSL_POLICY, Fleet, create_state_table, wait_for
from lbrecon_harness.moto_server import free_port
from lbrecon_harness.paths import ROOT


@pytest.fixture
def prometheus(tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: install Debian's prometheus package (./scripts/test.sh does)")
    processes = []

    def start(scrape_port):
        port = free_port()
        rules = ROOT / "deploy" / "prometheus" / "lbrecon-alerts.yml"
        config = tmp_path / "prometheus.yml"
        config.write_text(
            f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: lbrecon
    static_configs:
      - targets: ["127.0.0.1:{scrape_port}"]
"""
        )
        log = open(tmp_path / "prometheus.log", "w")
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        processes.append((process, log))
        url = f"http://127.0.0.1:{port}"

        def ready():
            try:
                return requests.get(f"{url}/-/ready", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=60, what="prometheus ready")
        return url

    yield start
    for process, log in processes:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def alerts(url, name):
    data = requests.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in data if a["labels"]["alertname"] == name]


def test_the_drift_alert_fires_and_resolves(lbrecon, moto, daemons, prometheus):
    fleet = Fleet(moto.endpoint)
    for i in range(3):
        fleet.alb(f"web-{i}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    port = free_port()
    lbrecon.write_config(daemon_config(port))
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    url = prometheus(port)

    def scraped():
        data = requests.get(f"{url}/api/v1/query", params={"query": "lbrecon_drift_load_balancers"}, timeout=5).json()
        return data["data"]["result"]

    wait_for(scraped, timeout=60, what="prometheus scraping lbrecon")
    assert alerts(url, "LbreconDriftPresent") == []

    fleet.elb.modify_listener(ListenerArn=fleet.listener_arn("web-1", 443), SslPolicy=STRICT_SSL_POLICY)
    started = time.monotonic()
    firing = wait_for(
        lambda: [a for a in alerts(url, "LbreconDriftPresent") if a["state"] == "firing"],
        timeout=150, interval=1, what="LbreconDriftPresent firing",
    )
    assert firing[0]["labels"]["target"] == "prod-use1"
    assert firing[0]["labels"]["severity"] == "warning"
    assert time.monotonic() - started >= 55, "the alert fired before its `for: 1m`"
    assert alerts(url, "LbreconStateDataMissing") == []

    fleet.elb.modify_listener(ListenerArn=fleet.listener_arn("web-1", 443), SslPolicy=SSL_POLICY)
    wait_for(lambda: alerts(url, "LbreconDriftPresent") == [], timeout=60, interval=1, what="the alert resolved")

    # State data missing fires without delay.
    fleet.delete_record("lb-state", "web-2")
    wait_for(
        lambda: [a for a in alerts(url, "LbreconStateDataMissing") if a["state"] == "firing"],
        timeout=30, interval=1, what="LbreconStateDataMissing firing",
    )
