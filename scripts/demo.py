"""The demo behind scripts/demo.sh. Run that script rather than this file."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from conftest import Moto, aws_env  # noqa: E402
from fleet import STRICT_SSL_POLICY, Fleet, create_state_table  # noqa: E402

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
