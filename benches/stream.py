"""Benchmark: from DeleteItem to paused, with and without the state table's stream.

Run it with ./scripts/bench.sh stream (it builds lbrecon in release mode and installs what it
needs). Against the emulator, a fleet of load balancers with their records in a state table
that has a NEW_AND_OLD_IMAGES stream; two daemons in turn, the SPEC's default interval (30 s),
one with `stream = "auto"`, one with `stream = "off"`. Each run: wait for a complete cycle with
every record present, delete a fifth of the records (a mass loss: it pauses on the first sight,
with or without the stream), time until the control item says paused, then write the records
back, resume, and wait for a clean complete cycle. Prints every run's time, the median and the
worst. Not a test: nothing here asserts a time.
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from lbrecon_harness.fleet import Fleet, add_web, control_item, create_state_table, wait_for
from lbrecon_harness.lbrecon import aws_env
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import Moto, free_port

from fleet import BenchDaemon

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[daemon]
interval = "30s"

[http]
listen = "127.0.0.1:{port}"

[[targets]]
name = "bench"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"
stream = "{stream}"

[snapshots]
dir = "{snapshots}"

[guard]
new_load_balancer_grace = "0s"

[[guard.pausers]]
type = "dynamodb_flag"
"""


def paused(fleet):
    item = control_item(fleet, "lb-state-control", "bench")
    return bool(item and item.get("paused"))


def complete_cycles(daemon):
    try:
        return metric(daemon.metrics()[0], "lbrecon_cycles_total", target="bench", outcome="complete") or 0
    except requests.RequestException:
        return 0


def run_mode(args, fleet, moto, workdir, stream):
    port = free_port()
    config = workdir / f"{stream}.toml"
    config.write_text(CONFIG.format(port=port, stream=stream, snapshots=workdir / f"snapshots-{stream}"))
    env = aws_env(moto.endpoint)
    lbrecon = [args.binary, "--config", str(config)]
    init = subprocess.run(lbrecon + ["init", "--target", "bench", "--approve", "BENCH-1"], env=env,
                          capture_output=True, text=True)
    if init.returncode != 0:
        raise RuntimeError(f"lbrecon init failed: {init.stderr}")
    daemon = BenchDaemon(args.binary, config, moto.endpoint, port, workdir / f"{stream}.log")
    doomed = sorted(fleet.records)[:: 5]
    times = []
    try:
        wait_for(lambda: complete_cycles(daemon) >= 1, timeout=600, interval=0.5, what="the first cycle")
        for run in range(args.runs):
            # A complete cycle that saw every record: the stream's basis and the high-water mark.
            seen = complete_cycles(daemon)
            wait_for(lambda: complete_cycles(daemon) > seen, timeout=120, interval=0.2, what="a clean cycle")
            # Somewhere in the interval, as a deletion would come.
            time.sleep(args.offset if args.offset >= 0 else (run * 30 / args.runs) % 30)
            started = time.monotonic()
            for name in doomed:
                fleet.delete_record("lb-state", name)
            wait_for(lambda: paused(fleet), timeout=600, interval=0.05, what="the pause")
            elapsed = time.monotonic() - started
            times.append(elapsed)
            print(f"stream={stream} run {run + 1}: paused {elapsed:.2f} s after the first DeleteItem", flush=True)
            fleet.write_records("lb-state", doomed)
            resume = subprocess.run(lbrecon + ["resume", "--target", "bench", "--reason", "bench"], env=env,
                                    capture_output=True, text=True)
            if resume.returncode != 0:
                raise RuntimeError(f"lbrecon resume failed: {resume.stdout} {resume.stderr}")
    finally:
        daemon.stop()
    print(f"stream={stream}: {len(doomed)} of {len(fleet.records)} records deleted, {len(times)} runs, "
          f"median {statistics.median(times):.2f} s, worst {max(times):.2f} s, best {min(times):.2f} s "
          f"(interval 30 s)", flush=True)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--load-balancers", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--offset", type=float, default=-1.0,
                        help="seconds after a complete cycle to delete (default: spread over the interval)")
    parser.add_argument("--modes", default="auto,off")
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lbrecon"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lbrecon-bench-stream-"))
    moto = Moto()
    try:
        fleet = Fleet(moto.endpoint)
        for i in range(args.load_balancers):
            add_web(fleet, f"web-{i:03d}")
        create_state_table(fleet.endpoint, fleet.region, "lb-state", stream=True)
        fleet.write_records("lb-state")
        for stream in args.modes.split(","):
            run_mode(args, fleet, moto, workdir, stream)
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
