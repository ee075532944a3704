"""Benchmark: restoring 10,000 records from a snapshot into the moto server.

Run it with ./scripts/bench.sh restore (it builds lbrecon in release mode and installs what it
needs). It prints the wall time of `lbrecon restore`, its TransactWriteItems calls and records
per second. Not a test: nothing here asserts a time.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lbrecon_harness.fleet import clients, create_state_table, wait_for
from lbrecon_harness.lbrecon import Daemon, aws_env
from lbrecon_harness.moto_server import Moto, free_port

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[daemon]
interval = "1s"
jitter = 0.0
cycle_deadline = "600s"

[http]
listen = "127.0.0.1:{port}"

[[targets]]
name = "bench"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"

[snapshots]
dir = "{snapshots}"

[aws]
dynamodb_requests_per_second = 1000
# The emulator answers a consistent scan of 10,000 records slowly.
attempt_timeout = "120s"
operation_timeout = "300s"
"""


class Runner:
    def __init__(self, binary, endpoint, config, tmp_path):
        self.binary = binary
        self.endpoint = endpoint
        self.config_path = config
        self.tmp_path = tmp_path


def record(i):
    name = f"lb-{i:05d}"
    return {
        "name": name,
        "version": 1,
        "updated_at": "2026-11-26T00:00:00Z",
        "config": {
            "name": name,
            "type": "application",
            "scheme": "internal",
            "subnets": ["subnet-1", "subnet-2"],
            "tags": {"team": "edge", "service": f"svc-{i % 50}"},
            "listeners": [
                {"port": 443, "protocol": "HTTPS", "ssl_policy": "ELBSecurityPolicy-2016-08",
                 "default_actions": [{"type": "forward", "target_group": f"{name}-api"}],
                 "rules": [{"priority": p, "conditions": [{"field": "path-pattern", "values": [f"/v{p}/*"]}],
                            "actions": [{"type": "forward", "target_group": f"{name}-api"}]} for p in (10, 20, 30)]},
            ],
            "target_groups": [{"name": f"{name}-api", "port": 8080, "protocol": "HTTP",
                               "health_check": {"path": "/health", "interval_seconds": 30}}],
        },
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lbrecon"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lbrecon-bench-"))
    port = free_port()
    config = workdir / "lbrecon.toml"
    config.write_text(CONFIG.format(port=port, snapshots=workdir / "snapshots"))
    # moto's per-transaction deep copy of the table is taken out (see that file); nothing else changes.
    moto = Moto(command=[sys.executable, str(ROOT / "benches" / "moto_cheap_transactions.py")])
    try:
        create_state_table(moto.endpoint, "us-east-1", "lb-state")
        table = clients(moto.endpoint, "us-east-1")["dynamodb_resource"].Table("lb-state")
        with table.batch_writer() as batch:
            for i in range(args.records):
                batch.put_item(Item=record(i))
        print(f"{args.records} records written to the state table", flush=True)

        daemon = Daemon(Runner(args.binary, moto.endpoint, config, workdir), port)
        try:
            wait_for(lambda: list((workdir / "snapshots" / "bench").glob("*.json.gz")), timeout=900, what="a snapshot")
        finally:
            daemon.stop()
        snapshot = sorted((workdir / "snapshots" / "bench").glob("*.json.gz"))[-1]
        snapshot_id = snapshot.name.removesuffix(".json.gz")
        print(f"snapshot {snapshot_id}: {snapshot.stat().st_size} bytes compressed", flush=True)

        with table.batch_writer() as batch:
            for i in range(args.records):
                batch.delete_item(Key={"name": f"lb-{i:05d}"})
        print("every record deleted (no load balancer is live: --include-gone restores them all)", flush=True)

        command = [args.binary, "--config", str(config), "restore", "--target", "bench", "--snapshot", snapshot_id,
                   "--include-gone", "--approve", "BENCH-1"]
        started = time.monotonic()
        result = subprocess.run(command, env=aws_env(moto.endpoint), capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            print(result.stdout, result.stderr)
            raise SystemExit(f"restore failed with {result.returncode}")
        written = int(re.search(r"wrote (\d+) record", result.stdout).group(1))
        calls = int(re.search(r"\((\d+) TransactWriteItems calls\)", result.stdout).group(1))
        writing = float(re.search(r"wrote \d+ record\(s\) in ([\d.]+) s", result.stdout).group(1))
        pages = clients(moto.endpoint, "us-east-1")["dynamodb"].get_paginator("scan")
        count = sum(page["Count"] for page in pages.paginate(TableName="lb-state", Select="COUNT"))
        print(f"restore: {written} records in {elapsed:.2f} s wall (process start to exit), "
              f"{calls} TransactWriteItems calls, {written / elapsed:.0f} records/s; of which writing {writing:.2f} s "
              f"({writing / calls * 1000:.0f} ms a call, four in flight); table now holds {count}")
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
