"""The demo behind scripts/demo.sh. Run that script rather than this file."""

import datetime
import json
import time
import subprocess
import tempfile
import textwrap
from pathlib import Path

from lbrecon_harness.fleet import (
    STRICT_SSL_POLICY,
    Fleet,
    add_scaling_group,
    add_web,
    control_item,
    create_state_table,
    suspended,
    wait_for,
)
from lbrecon_harness.lbrecon import Daemon, aws_env
from lbrecon_harness.moto_server import Moto, free_port

ROOT = Path(__file__).resolve().parents[1]

BINARY = ROOT / "target" / "debug" / "lbrecon"

CONFIG = """
[daemon]
interval = "30s"

[[targets]]
name = "demo-use1"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"

[snapshots]
dir = "{snapshots}"
"""


REPLAY_CONFIG = """
[daemon]
interval = "1s"
jitter = 0.0

[http]
listen = "127.0.0.1:{port}"

[[targets]]
name = "replay-usw2"
region = "us-west-2"
state_table = "lb-state"
control_table = "lb-state-control"

[guard]
confirm_cycles = 2
# The demo's load balancers are seconds old; in production keep the 5-minute default.
new_load_balancer_grace = "0s"

[[guard.pausers]]
type = "dynamodb_flag"

[[guard.pausers]]
type = "autoscaling"

[aws]
elb_requests_per_second = 200
elb_burst = 200

[snapshots]
dir = "{snapshots}"
"""


class Runner:
    """Just enough of the test harness's Lbrecon for Daemon."""

    def __init__(self, endpoint, config, tmp_path):
        self.binary = BINARY
        self.endpoint = endpoint
        self.config_path = config
        self.tmp_path = tmp_path


def replay(moto, workdir):
    banner("the Christmas Eve replay: 20 load balancers behind Auto Scaling groups, lbrecon run every second")
    fleet = Fleet(moto.endpoint, "us-west-2")
    for i in range(20):
        add_scaling_group(fleet, f"asg-{i:02d}", [add_web(fleet, f"svc-{i:02d}")])
    create_state_table(moto.endpoint, "us-west-2", "lb-state")
    fleet.write_records("lb-state")
    port = free_port()
    config = workdir / "replay.toml"
    config.write_text(REPLAY_CONFIG.format(port=port, snapshots=workdir / "snapshots"))
    lbrecon(moto.endpoint, config, "init", "--target", "replay-usw2", "--approve", "DEMO-1")
    daemon = Daemon(Runner(moto.endpoint, config, workdir), port)
    try:
        daemon.wait_ready()
        print(f"lbrecon run is up: http://127.0.0.1:{port}/metrics")

        wait_for(lambda: list((workdir / "snapshots" / "replay-usw2").glob("*.json.gz")), timeout=30,
                 what="the first snapshot")
        time.sleep(0.01)
        before = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        print(f"lbrecon has snapshotted the state table; it is now {before}")

        banner("a maintenance process deletes 30% of the state data")
        doomed = [f"svc-{i:02d}" for i in (1, 4, 6, 9, 12, 15)]
        deleted = time.monotonic()
        for name in doomed:
            fleet.delete_record("lb-state", name)
        print("deleted the records of " + ", ".join(doomed))
        wait_for(lambda: (control_item(fleet, "lb-state-control", "replay-usw2") or {}).get("paused"),
                 timeout=30, interval=0.02, what="the pause flag")
        detected = time.monotonic() - deleted
        wait_for(lambda: control_item(fleet, "lb-state-control", "replay-usw2")["pausers"]["autoscaling"]["status"] == "done",
                 timeout=30, interval=0.02, what="the Auto Scaling pause")
        paused = time.monotonic() - deleted
        print(f"detected and flagged paused after {detected:.2f} s; Auto Scaling processes suspended after {paused:.2f} s")
        print(f"(2012: about 4.5 hours to understand the cause and disable the workflows)")

        banner("lbrecon status")
        lbrecon(moto.endpoint, config, "status")
        print("asg-01 suspended processes now: " + ", ".join(sorted(suspended(fleet, "asg-01"))))
        print("asg-02 (its load balancer still has a record): " + (", ".join(sorted(suspended(fleet, "asg-02"))) or "none"))

        banner("restore the lost records from the snapshot taken before the deletion")
        lbrecon(moto.endpoint, config, "restore", "--target", "replay-usw2", "--at", before, "--dry-run")
        started = time.monotonic()
        lbrecon(moto.endpoint, config, "restore", "--target", "replay-usw2", "--at", before, "--approve", "DEMO-2")
        print(f"restore took {time.monotonic() - started:.2f} s, process start to exit "
              "(2012: the first restore ran for hours and produced nothing usable)")

        banner("resume: the records are back, so no --force is needed")
        lbrecon(moto.endpoint, config, "resume", "--target", "replay-usw2", "--reason", "records restored (DEMO-2)")
        print("asg-01 suspended processes now: " + (", ".join(sorted(suspended(fleet, "asg-01"))) or "none"))

        banner("lbrecon check: the replayed fleet is in sync again")
        lbrecon(moto.endpoint, config, "check")
    finally:
        daemon.stop()


def banner(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def lbrecon(endpoint, config, *args):
    command = [str(BINARY), "--config", str(config), *args]
    print("$ lbrecon " + " ".join(args), flush=True)
    result = subprocess.run(command, env=aws_env(endpoint), capture_output=True, text=True)
    print(result.stdout, end="")
    if result.stderr.strip():
        print(textwrap.indent(result.stderr.strip(), "  (stderr) "))
    print(f"(exit {result.returncode})", flush=True)
    return result


def main():
    (ROOT / "target").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="lbrecon-demo-"))
    config = workdir / "lbrecon.toml"
    config.write_text(CONFIG.format(snapshots=workdir / "snapshots"))

    banner("starting the AWS emulator (moto) on loopback")
    moto = Moto()
    try:
        print(f"endpoint {moto.endpoint}")
        banner("building a fleet of 12 load balancers and writing their records")
        fleet = Fleet(moto.endpoint)
        for i in range(9):
            fleet.alb(f"web-{i}")
        for i in range(3):
            fleet.nlb(f"db-{i}")
        create_state_table(moto.endpoint, "us-east-1", "lb-state")
        fleet.write_records("lb-state")
        print(f"{len(fleet.records)} load balancers, {len(fleet.records)} records in table lb-state")

        banner("lbrecon check: everything in sync")
        lbrecon(moto.endpoint, config, "check")

        banner("changing the fleet behind the control plane's back")
        fleet.elb.modify_listener(ListenerArn=fleet.listener_arn("web-1", 443), SslPolicy=STRICT_SSL_POLICY)
        print("web-1: HTTPS listener moved to a stricter TLS policy")
        fleet.elb.modify_target_group(TargetGroupArn=fleet.target_group_arns["web-2-api"], HealthCheckPath="/ping")
        print("web-2: health-check path of target group web-2-api changed")
        fleet.elb.delete_listener(ListenerArn=fleet.listener_arn("web-3", 80))
        print("web-3: HTTP listener deleted")
        fleet.delete_record("lb-state", "web-4")
        fleet.delete_record("lb-state", "db-0")
        print("web-4, db-0: records deleted from the state table (state data missing)")
        fleet.elb.delete_load_balancer(LoadBalancerArn=fleet.arns["web-5"])
        print("web-5: load balancer deleted out of band")

        banner("lbrecon check: the drift, for people")
        lbrecon(moto.endpoint, config, "check")

        banner("lbrecon check --format json: the drift, for machines")
        result = lbrecon_quiet(moto.endpoint, config)
        report = json.loads(result.stdout)
        target = report["targets"][0]
        print(json.dumps({"summary": target["summary"], "load_balancers": target["load_balancers"][:2]}, indent=2))
        print(f"... {len(target['load_balancers'])} load balancers not in sync; exit code {result.returncode} (drift)")

        replay(moto, workdir)
    finally:
        moto.stop()
    banner("done: the emulator is stopped")


def lbrecon_quiet(endpoint, config):
    return subprocess.run(
        [str(BINARY), "--config", str(config), "check", "--format", "json"],
        env=aws_env(endpoint),
        capture_output=True,
        text=True,
    )


if __name__ == "__main__":
    main()
