"""Benchmark: lbrecon against a fleet of 100,000 load balancers, under the API budget.

Run it with ./scripts/bench.sh scale [options] (it builds lbrecon in release mode), or directly
with `python benches/scale.py --binary PATH`. A fleet this size cannot be built in the moto
server, so the ELBv2 API is a synthetic endpoint (`lbrecon_harness.synthetic_elb`) that answers
from the indices of N load balancers and T target groups; DynamoDB and STS are a moto server,
whose state table holds one record per load balancer, in sync with what the endpoint serves. A
fault proxy in front of both counts every call and can throttle a share of the ELB calls. Each
load balancer has one HTTP listener with a default rule and one more, one target group and two
tags. Prints, each with its parameters:

- (a) `lbrecon run` at the default budget (2 ELB calls a second, burst 10) and
  `daemon.interval = "30s"`, at `--load-balancers` (default 100,000) and as many target groups:
  the first presence pass's duration (its first to its last ELB page, and the time to the first
  complete cycle), the cadence the daemon announces it keeps, and the time between the first
  two presence passes;
- (b) the same with one ELB call in three throttled;
- (c) at `--small` (default 10,000) load balancers, a fast budget (1,000 ELB calls a second)
  and `--memory-interval` (default 20 s: the deep reads of a cycle get the time left before the
  next presence pass is due, so the interval must outlast the presence pass, whose scan of the
  emulator's table takes some seconds): the daemon's resident memory after its first full deep
  pass and after `--cycles` cycles; with `--stream`, the state table has a stream the daemon
  tails and journals, and checks against its snapshots every cycle;
- (d) at `--small` load balancers, `lbrecon check` with a fast budget: calls by operation and
  their ratio to the SPEC 12 floor.

`--only a,b,c,d` picks figures. Not a test: nothing here asserts a figure.
"""

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import boto3
import requests
from boto3.dynamodb.types import TypeSerializer
from lbrecon_harness.faultproxy import FaultProxy
from lbrecon_harness.fleet import TEST_CREDENTIALS, create_state_table, wait_for
from lbrecon_harness.lbrecon import Daemon, aws_env
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import Moto, free_port
from lbrecon_harness.synthetic_elb import SyntheticElb, SyntheticFleet, lb_name

ROOT = Path(__file__).resolve().parents[1]

REGION = "us-east-1"
PAGE = 400
CONFIG = """
[daemon]
interval = "{interval}"
jitter = 0.0
cycle_deadline = "3600s"

[http]
listen = "127.0.0.1:{port}"

[[targets]]
name = "bench"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"

[snapshots]
dir = "{snapshots}"

[metrics]
per_load_balancer = false

[aws]
{budget}
concurrency = 8
attempt_timeout = "120s"
operation_timeout = "300s"
"""
BUDGET_DEFAULT = ""  # 2 ELB calls a second, burst 10; 25 DynamoDB calls a second
BUDGET_FAST = "elb_requests_per_second = 1000\nelb_burst = 1000\ndynamodb_requests_per_second = 1000"


def floor(n, listeners, target_groups):
    """SPEC 12's full read: pages of load balancers and target groups, listeners, rules, tags,
    attributes."""
    return (math.ceil(n / PAGE) + math.ceil(target_groups / PAGE) + n + n * listeners
            + math.ceil((n + target_groups) / 20) + n + target_groups)


def write_records(endpoint, fleet, count, stream=False):
    """One record per load balancer 0..count-1 in a new state table, 25 a `BatchWriteItem`
    (with a `NEW_AND_OLD_IMAGES` stream first where `stream`). Returns the seconds it took."""
    create_state_table(endpoint, REGION, "lb-state", stream)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, **TEST_CREDENTIALS)
    serialize = TypeSerializer().serialize
    started = time.monotonic()
    for first in range(0, count, 25):
        batch = [{"PutRequest": {"Item": {
            "name": {"S": lb_name(i)},
            "config": serialize(fleet.record(i)),
            "version": {"N": "1"},
            "updated_at": {"S": "2026-01-01T00:00:00Z"},
            "source": {"S": "deploy-pipeline"},
        }}} for i in range(first, min(first + 25, count))]
        while batch:
            unprocessed = dynamodb.batch_write_item(RequestItems={"lb-state": batch}).get("UnprocessedItems", {})
            batch = unprocessed.get("lb-state", [])
    return time.monotonic() - started


class Environment:
    """moto (DynamoDB, STS), the synthetic ELBv2 endpoint, and the proxy in front of both."""

    def __init__(self, load_balancers, target_groups, records, stream=False):
        self.fleet = SyntheticFleet(load_balancers, target_groups)
        self.records = records
        self.stream = stream
        # moto's scan costs time in proportion to the table for every page: the launcher takes
        # that out (benches/moto_cheap_scans.py says how).
        self.moto = Moto(command=[sys.executable, str(ROOT / "benches" / "moto_cheap_scans.py")])
        try:
            self.record_seconds = write_records(self.moto.endpoint, self.fleet, records, stream)
            self.elb = SyntheticElb(self.fleet)
            self.proxy = FaultProxy(self.moto.endpoint, elb_upstream=self.elb.endpoint)
            # A daemon stopped mid-request drops its connections: no traceback for each.
            for server in (self.proxy.loopback.server, self.elb.loopback.server):
                server.handle_error = lambda request, client_address: None
        except BaseException:
            self.moto.stop()
            raise

    def describe(self):
        f = self.fleet
        stream = " with a NEW_AND_OLD_IMAGES stream" if self.stream else ""
        return (f"{f.n:,} load balancers, {f.t:,} target groups (synthetic ELBv2), {self.records:,} records "
                f"in the moto state table{stream} (written in {self.record_seconds:.0f} s)")

    def stop(self):
        self.proxy.stop()
        self.elb.stop()
        self.moto.stop()


class BenchDaemon(Daemon):
    """An `lbrecon run` process started and stopped by its PID, logging JSON."""

    def __init__(self, binary, config, endpoint, port, log):
        runner = SimpleNamespace(binary=binary, config_path=config, tmp_path=Path(log).parent, endpoint=endpoint)
        env = aws_env(endpoint)
        env.update(LBRECON_LOG="info", LBRECON_LOG_FORMAT="json")
        super().__init__(runner, port, env=env, log_name=Path(log).name)

    def cycles(self):
        try:
            return metric(self.metrics()[0], "lbrecon_cycles_total", target="bench", outcome="complete") or 0
        except requests.RequestException:
            return 0

    def rss_mib(self, field="VmRSS"):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def log_lines(self):
        lines = []
        for line in self.output().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
        return lines


def message_of(line):
    fields = line.get("fields", line)
    return fields.get("message", ""), fields


def write_config(workdir, name, interval, budget):
    port = free_port()
    path = workdir / f"{name}.toml"
    path.write_text(CONFIG.format(interval=interval, port=port, snapshots=workdir / f"snapshots-{name}", budget=budget))
    return path, port


def cadence_of(daemon):
    """The cadence the daemon announced (its warning's figure, as logged), or None."""
    for line in daemon.log_lines():
        message, fields = message_of(line)
        found = re.search(r"keeping a cadence of (.+?) instead", message)
        if found:
            return found.group(1), fields.get("cadence_seconds"), fields.get("presence_calls")
    return None


def presence_passes(env, started):
    """[(start, end)] of each complete presence pass the endpoint served, in seconds since
    `started`: from its first first-page request of `DescribeLoadBalancers` or
    `DescribeTargetGroups` to its last last-page answer."""
    with env.elb.lock:
        events = list(env.elb.pages)
    firsts = {"DescribeLoadBalancers": [], "DescribeTargetGroups": []}
    lasts = {"DescribeLoadBalancers": [], "DescribeTargetGroups": []}
    for t, action, first, last in events:
        if first:
            firsts[action].append(t - started)
        if last:
            lasts[action].append(t - started)
    count = min(len(v) for v in [*firsts.values(), *lasts.values()])
    return [(min(firsts["DescribeLoadBalancers"][k], firsts["DescribeTargetGroups"][k]),
             max(lasts["DescribeLoadBalancers"][k], lasts["DescribeTargetGroups"][k])) for k in range(count)]


def daemon_at_default_budget(args, env, workdir, label, throttle_every=None):
    """Figures (a) and (b): the daemon at the default budget until its second presence pass
    ends (or `--run-limit` runs out)."""
    f = env.fleet
    config, port = write_config(workdir, f"default-{label}", args.interval, BUDGET_DEFAULT)
    env.proxy.reset_counts()
    env.elb.reset()
    env.proxy.throttle_share("elasticloadbalancing", throttle_every)
    throttled = f"one ELB call in {throttle_every} throttled" if throttle_every else "no throttling"
    print(f"\n== ({label}) lbrecon run, default budget (2 ELB calls/s, burst 10), interval {args.interval}, "
          f"{throttled}: {env.describe()}", flush=True)
    started = time.monotonic()
    daemon = BenchDaemon(args.binary, config, env.proxy.endpoint, port, workdir / f"daemon-{label}.log")
    first_cycle = None
    try:
        deadline = started + args.run_limit
        while time.monotonic() < deadline:
            if daemon.process.poll() is not None:
                print(f"  the daemon exited with {daemon.process.returncode}", flush=True)
                break
            if first_cycle is None and daemon.cycles() >= 1:
                first_cycle = time.monotonic() - started
            if len(presence_passes(env, started)) >= 2:
                break
            time.sleep(1)
        passes = presence_passes(env, started)
        announced = cadence_of(daemon)
        elb_calls = sum(c for (service, _), c in env.proxy.operations().items() if service == "elasticloadbalancing")
    finally:
        daemon.stop()
        env.proxy.throttle_share("elasticloadbalancing", None)
    presence = math.ceil(f.n / PAGE) + math.ceil(f.t / PAGE)
    print(f"  presence pass: {presence} ELB pages ({presence / 2:.0f} s at 2/s)", flush=True)
    if passes:
        start, end = passes[0]
        print(f"  first presence pass: {end - start:.1f} s from its first to its last ELB page "
              f"(began {start:.1f} s after start)", flush=True)
    print(f"  first complete cycle: " + (f"{first_cycle:.1f} s after start" if first_cycle else "not reached"),
          flush=True)
    if announced:
        text, seconds, calls = announced
        print(f"  announced cadence: {text} ({seconds} s; presence_calls {calls})", flush=True)
    else:
        print("  announced cadence: no warning logged", flush=True)
    if len(passes) >= 2:
        print(f"  second presence pass: {passes[1][1] - passes[1][0]:.1f} s; between the starts of the first two "
              f"presence passes: {passes[1][0] - passes[0][0]:.1f} s", flush=True)
    else:
        print(f"  second presence pass: not complete within --run-limit {args.run_limit:.0f} s", flush=True)
    by_operation = ", ".join(f"{op} {c}" for (_, op), c in sorted(env.proxy.operations().items()))
    print(f"  calls seen by the proxy in {time.monotonic() - started:.0f} s: {by_operation} "
          f"({elb_calls} ELB, of which {elb_calls - sum(env.elb.counts.values())} answered Throttling)", flush=True)


def check_calls(args, env, workdir):
    """Figure (d): `lbrecon check`, fast budget, calls by operation against the floor."""
    f = env.fleet
    config, _ = write_config(workdir, "check", "30s", BUDGET_FAST)
    env.proxy.reset_counts()
    env.elb.reset()
    print(f"\n== (d) lbrecon check, fast budget (1000 ELB calls/s): {env.describe()}", flush=True)
    started = time.monotonic()
    result = subprocess.run([args.binary, "--config", str(config), "check", "--format", "json"],
                            env=aws_env(env.proxy.endpoint), capture_output=True, text=True)
    seconds = time.monotonic() - started
    summary = {}
    try:
        summary = json.loads(result.stdout)["targets"][0]["summary"]
    except (ValueError, KeyError, IndexError):
        print(f"  no report: {result.stderr[-2000:]}", flush=True)
    operations = env.proxy.operations()
    elb = {op: c for (service, op), c in operations.items() if service == "elasticloadbalancing"}
    expected = floor(f.n, 1, f.t)
    print(f"  {seconds:.1f} s wall, exit {result.returncode}, in_sync {summary.get('in_sync')}/{f.n}", flush=True)
    print("  ELB calls: " + ", ".join(f"{op} {c}" for op, c in sorted(elb.items())), flush=True)
    print("  other calls: " + ", ".join(f"{op} {c}" for (service, op), c in sorted(operations.items())
                                         if service != "elasticloadbalancing"), flush=True)
    print(f"  {sum(elb.values())} ELB calls against the SPEC 12 floor {expected} (N = {f.n}, L = 1, T = {f.t}): "
          f"ratio {sum(elb.values()) / expected:.4f}", flush=True)


def memory(daemon):
    """The process's resident memory (VmRSS), its peak (VmHWM), and the resident memory's
    anonymous part (heap, stacks) and file-backed part (mostly the binary's code)."""
    return ", ".join(f"{field} {daemon.rss_mib(field):.1f} MiB" for field in ("VmRSS", "VmHWM", "RssAnon", "RssFile"))


def daemon_memory(args, env, workdir):
    """Figure (c): resident memory after the first full deep pass and after `--cycles` cycles."""
    f = env.fleet
    config, port = write_config(workdir, "memory", args.memory_interval, BUDGET_FAST)
    env.proxy.reset_counts()
    env.elb.reset()
    print(f"\n== (c) lbrecon run, fast budget (1000 ELB calls/s, burst 1000), interval {args.memory_interval}: "
          f"{env.describe()}", flush=True)
    if env.stream:
        # The stream's checkpoints live in the control table: `init` creates it, as an operator would.
        init = subprocess.run([args.binary, "--config", str(config), "init", "--target", "bench", "--approve",
                               "BENCH-1"], env=aws_env(env.proxy.endpoint), capture_output=True, text=True)
        if init.returncode != 0:
            raise RuntimeError(f"lbrecon init failed: {init.stderr}")
    started = time.monotonic()
    daemon = BenchDaemon(args.binary, config, env.proxy.endpoint, port, workdir / "daemon-memory.log")
    try:
        wait_for(lambda: env.elb.counts["DescribeLoadBalancerAttributes"] >= f.n, timeout=3600, interval=0.5,
                 what="every load balancer deep-read")
        read_all = daemon.cycles() + 1
        wait_for(lambda: daemon.cycles() >= read_all, timeout=3600, interval=0.2, what="that cycle's end")
        print(f"  first full deep pass done with cycle {read_all} ({time.monotonic() - started:.0f} s): "
              f"{memory(daemon)}", flush=True)
        marks = sorted({m for m in (10, 25, 50, args.cycles) if read_all < m <= args.cycles})
        for mark in marks:
            wait_for(lambda: daemon.cycles() >= mark, timeout=7200, interval=0.2, what=f"cycle {mark}")
            print(f"  cycle {mark} ({time.monotonic() - started:.0f} s): {memory(daemon)}; "
                  f"{env.elb.counts['DescribeLoadBalancerAttributes']} load-balancer deep reads so far", flush=True)
    finally:
        daemon.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lbrecon"))
    parser.add_argument("--only", default="a,b,c,d", help="figures to measure: a, b, c, d")
    parser.add_argument("--load-balancers", type=int, default=100_000, help="fleet of (a) and (b)")
    parser.add_argument("--records", type=int, default=None,
                        help="state-table records for (a) and (b) (default: one per load balancer)")
    parser.add_argument("--small", type=int, default=10_000, help="fleet of (c) and (d)")
    parser.add_argument("--interval", default="30s", help="daemon.interval of (a) and (b)")
    parser.add_argument("--cycles", type=int, default=100, help="cycles of (c)")
    parser.add_argument("--memory-interval", default="20s", help="daemon.interval of (c)")
    parser.add_argument("--stream", action="store_true",
                        help="give the state table of (c) and (d) a NEW_AND_OLD_IMAGES stream, which the daemon "
                             "tails and journals, with a recovery check every cycle")
    parser.add_argument("--run-limit", type=float, default=1200.0,
                        help="seconds (a) and (b) each wait for two presence passes")
    args = parser.parse_args()
    only = set(args.only.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="lbrecon-scale-"))
    print(f"binary {args.binary}; logs and configs in {workdir}", flush=True)
    if only & {"a", "b"}:
        n = args.load_balancers
        env = Environment(n, n, n if args.records is None else args.records)
        try:
            if "a" in only:
                daemon_at_default_budget(args, env, workdir, "a")
            if "b" in only:
                daemon_at_default_budget(args, env, workdir, "b", throttle_every=3)
        finally:
            env.stop()
    if only & {"c", "d"}:
        env = Environment(args.small, args.small, args.small, stream=args.stream)
        try:
            if "d" in only:
                check_calls(args, env, workdir)
            if "c" in only:
                daemon_memory(args, env, workdir)
        finally:
            env.stop()


if __name__ == "__main__":
    main()
