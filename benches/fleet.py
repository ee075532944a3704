"""Benchmark: reading a fleet of N load balancers in the moto server.

Run it with ./scripts/bench.sh fleet [--sizes 1000,3000] (it builds lbrecon in release mode and
installs what it needs). For each size it builds a fleet (each load balancer: one HTTP
listener with two rules, one target group, two tags; every one recorded in the state table)
and prints, from one run:

- `lbrecon check` (one presence pass and one full deep pass) with the budget off: wall time,
  calls by operation (counted by a proxy in front of moto), the presence pass's share of the
  wall time (until the proxy saw the first deep call), and the process's peak RSS;
- the same full read done the plain way (one call after another, `DescribeTags` one ARN at a
  time) with boto3, as the baseline ratio;
- `lbrecon run` with the default budget (2 ELB calls/s, burst 10): the presence pass's
  wall time, the ELB call rate the proxy saw over the first interval, and the time a full deep
  pass takes at that rate (calls / rate);
- the idle daemon's CPU use between cycles and its resident memory.

With --pause FRACTION it first deletes that fraction of the records under a running daemon
(default interval, budget and guard) and prints the time until scaling is paused.
With --also BINARY (repeatable) it runs the same `check` with another build against the same
fleet, then this build again, for side-by-side figures. With --soak N it also runs a daemon for N cycles on a small fleet and prints its resident memory
every 100 cycles (no per-cycle growth is the goal). Not a test: nothing here asserts a figure.
"""

import argparse
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import requests
from lbrecon_harness.faultproxy import FaultProxy
from lbrecon_harness.fleet import Fleet, clients, create_state_table, wait_for
from lbrecon_harness.lbrecon import Daemon, aws_env
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import Moto, free_port

ROOT = Path(__file__).resolve().parents[1]

PRESENCE = {"DescribeLoadBalancers", "DescribeTargetGroups", "Scan"}
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
BUDGET_OFF = "elb_requests_per_second = 100000\nelb_burst = 100000\ndynamodb_requests_per_second = 100000"
BUDGET_ON = ""  # the defaults: 2 ELB calls a second (burst 10), 25 DynamoDB calls a second


def build(endpoint, count):
    """`count` load balancers; returns the Fleet with every record."""
    fleet = Fleet(endpoint)
    elb = fleet.elb

    def one(i):
        name = f"lb-{i:05d}"
        lb = elb.create_load_balancer(Name=name, Subnets=fleet.subnets, Scheme="internal", Type="application",
                                      Tags=[{"Key": "team", "Value": f"team-{i % 20}"},
                                            {"Key": "service", "Value": name}])["LoadBalancers"][0]
        tg = elb.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=8080, VpcId=fleet.vpc,
                                     HealthCheckPath="/health")["TargetGroups"][0]
        listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                       DefaultActions=[{"Type": "forward",
                                                        "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
        for priority in (10, 20):
            elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=priority,
                            Conditions=[{"Field": "path-pattern", "Values": [f"/v{priority}/*"]}],
                            Actions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
        return name, {
            "name": name, "type": "application", "scheme": "internal",
            "tags": {"team": f"team-{i % 20}", "service": name},
            "listeners": [{"port": 80, "protocol": "HTTP",
                           "default_actions": [{"type": "forward", "target_group": f"{name}-tg"}],
                           "rules": [{"priority": p, "conditions": [{"field": "path-pattern", "values": [f"/v{p}/*"]}],
                                      "actions": [{"type": "forward", "target_group": f"{name}-tg"}]}
                                     for p in (10, 20)]}],
            "target_groups": [{"name": f"{name}-tg", "protocol": "HTTP", "port": 8080,
                               "health_check": {"path": "/health"}}],
        }

    # One at a time: the emulator's ELBv2 backend is not safe against concurrent writes.
    for i in range(count):
        name, record = one(i)
        fleet.records[name] = record
    create_state_table(endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    return fleet


def formula(n, listeners, target_groups):
    """docs/architecture.md#budget's full read: pages, listeners, rules, tags, attributes."""
    return (math.ceil(n / 400) + math.ceil(target_groups / 400) + n + n * listeners
            + math.ceil((n + target_groups) / 20) + n + target_groups)


def proc_status_mib(pid, field):
    """A memory field of /proc/PID/status (`VmRSS`, `VmHWM`: the peak so far) in MiB, or None
    once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_measured(command, env):
    """Runs `command`; returns (seconds, exit code, peak RSS in MiB, stdout). The peak is read
    from /proc every 20 ms while it runs (a child's rusage would count the forking Python
    process's memory too)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.DEVNULL, text=True)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, proc_status_mib(process.pid, "VmHWM") or 0.0)
            time.sleep(0.02)
        out.seek(0)
        return time.monotonic() - started, process.returncode, peak, out.read()


def presence_seconds(proxy, started):
    """Seconds from `started` until the proxy saw the first call that is not the presence pass's."""
    with proxy.lock:
        deep = [t for t, service, op in proxy.requests
                if service == "elasticloadbalancing" and op not in PRESENCE]
    return (min(deep) - started) if deep else float("nan")


def plain_read(endpoint):
    """The full read one call after another, tags one ARN at a time. Returns (seconds, calls)."""
    c = clients(endpoint, "us-east-1")
    elb, dynamodb = c["elbv2"], c["dynamodb"]
    calls = 0
    started = time.monotonic()
    lbs, tgs, marker = [], [], None
    while True:
        page = elb.describe_load_balancers(**({"Marker": marker} if marker else {}))
        calls += 1
        lbs += page["LoadBalancers"]
        marker = page.get("NextMarker")
        if not marker:
            break
    while True:
        page = elb.describe_target_groups(**({"Marker": marker} if marker else {}))
        calls += 1
        tgs += page["TargetGroups"]
        marker = page.get("NextMarker")
        if not marker:
            break
    key = None
    while True:
        page = dynamodb.scan(TableName="lb-state", ConsistentRead=True, **({"ExclusiveStartKey": key} if key else {}))
        calls += 1
        key = page.get("LastEvaluatedKey")
        if not key:
            break
    for lb in lbs:
        arn = lb["LoadBalancerArn"]
        for listener in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            elb.describe_rules(ListenerArn=listener["ListenerArn"])
            calls += 1
        elb.describe_load_balancer_attributes(LoadBalancerArn=arn)
        elb.describe_tags(ResourceArns=[arn])
        calls += 3
    for tg in tgs:
        elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])
        elb.describe_tags(ResourceArns=[tg["TargetGroupArn"]])
        calls += 2
    return time.monotonic() - started, calls


class BenchDaemon(Daemon):
    """The suite's `lbrecon run` process (started and stopped by its PID), with what the
    benchmark reads of it from /proc."""

    def __init__(self, binary, config, endpoint, port, log):
        runner = SimpleNamespace(binary=binary, config_path=config, tmp_path=Path(log).parent, endpoint=endpoint)
        super().__init__(runner, port, env=aws_env(endpoint), log_name=Path(log).name)

    def cycles(self):
        try:
            return metric(self.metrics()[0], "lbrecon_cycles_total", target="bench", outcome="complete") or 0
        except requests.RequestException:
            return 0

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self):
        return proc_status_mib(self.process.pid, "VmRSS") or float("nan")


def write_config(workdir, name, interval, budget):
    port = free_port()
    path = workdir / f"{name}.toml"
    path.write_text(CONFIG.format(interval=interval, port=port, snapshots=workdir / f"snapshots-{name}",
                                  budget=budget))
    return path, port


def bench_size(args, n, workdir):
    moto = Moto()
    try:
        started = time.monotonic()
        fleet = build(moto.endpoint, n)
        print(f"\n== {n} load balancers ({n} target groups, {n} listeners, {2 * n} rules) built in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        if args.pause:
            time_to_pause(args, fleet, moto, n, workdir)
            if args.pause_only:
                return
        expected = formula(n, 1, n)
        proxy = FaultProxy(moto.endpoint)
        try:
            # lbrecon check, budget off.
            config, _ = write_config(workdir, f"off-{n}", "30s", BUDGET_OFF)
            proxy.reset_counts()
            start = time.monotonic()
            seconds, code, rss, out = run_measured([args.binary, "--config", str(config), "check", "--format", "json"],
                                                   aws_env(proxy.endpoint))
            report = json.loads(out)["targets"][0]
            elb_calls = sum(count for (service, _), count in proxy.operations().items()
                            if service == "elasticloadbalancing")
            print(f"lbrecon check, budget off: {seconds:.1f} s wall, exit {code}, in_sync "
                  f"{report['summary']['in_sync']}/{n}; presence pass {presence_seconds(proxy, start):.2f} s; "
                  f"{elb_calls} ELB calls (docs/architecture.md#budget floor {expected}); peak RSS {rss:.1f} MiB", flush=True)
            by_operation = ", ".join(f"{op} {count}" for (_, op), count in sorted(proxy.operations().items()))
            print(f"  calls: {by_operation}", flush=True)

            # Other builds (an earlier commit, say) against the same fleet, one after the other.
            for other in args.also:
                seconds, code, rss, _ = run_measured([other, "--config", str(config), "check", "--format", "json"],
                                                     aws_env(moto.endpoint))
                print(f"  {other}: check {seconds:.1f} s wall, exit {code}, peak RSS {rss:.1f} MiB", flush=True)
            if args.also:
                seconds, code, rss, _ = run_measured([args.binary, "--config", str(config), "check", "--format", "json"],
                                                     aws_env(moto.endpoint))
                print(f"  {args.binary} again: check {seconds:.1f} s wall, exit {code}, peak RSS {rss:.1f} MiB",
                      flush=True)

            # The plain way, same fleet, same run.
            if not args.skip_baseline:
                plain_seconds, plain_calls = plain_read(moto.endpoint)
                print(f"plain sequential read (boto3, tags one ARN a call): {plain_seconds:.1f} s, {plain_calls} calls; "
                      f"lbrecon is {plain_seconds / seconds:.1f}x faster with {plain_calls / max(elb_calls, 1):.2f}x "
                      f"fewer calls", flush=True)

            # The daemon with the default budget: presence pass, the rate it holds, idle CPU.
            config, port = write_config(workdir, f"on-{n}", "60s", BUDGET_ON)
            proxy.reset_counts()
            start = time.monotonic()
            daemon = BenchDaemon(args.binary, config, proxy.endpoint, port, workdir / f"daemon-{n}.log")
            try:
                wait_for(lambda: daemon.cycles() >= 1, timeout=3600, interval=1, what="the first cycle")
                first_cycle = time.monotonic() - start
                presence = presence_seconds(proxy, start)
                with proxy.lock:
                    times = sorted(t for t, service, _ in proxy.requests if service == "elasticloadbalancing")
                window = [t for t in times if t - times[0] <= 60]
                rate = (len(window) - 10) / (window[-1] - window[0]) if len(window) > 11 else float("nan")
                samples = daemon.metrics()[0]
                age = metric(samples, "lbrecon_deep_check_age_seconds", target="bench")
                print(f"lbrecon run, default budget (2/s, burst 10): presence pass {presence:.1f} s; first cycle "
                      f"{first_cycle:.1f} s; ELB calls at {rate:.2f}/s after the burst; a full deep pass at that "
                      f"rate takes {expected / rate / 60:.0f} min (floor {expected} calls); deep-check age {age:.0f} s",
                      flush=True)
                print(f"  RSS after the first cycle: {daemon.rss_mib():.1f} MiB", flush=True)
            finally:
                daemon.stop()

            # Idle: budget off, a long interval; measured after a full first cycle, before the next.
            config, port = write_config(workdir, f"idle-{n}", "3600s", BUDGET_OFF)
            daemon = BenchDaemon(args.binary, config, moto.endpoint, port, workdir / f"idle-{n}.log")
            try:
                wait_for(lambda: daemon.cycles() >= 1, timeout=3600, interval=1, what="the first cycle")
                time.sleep(2)
                cpu_before, wall_before = daemon.cpu_seconds(), time.monotonic()
                time.sleep(args.idle)
                cpu = daemon.cpu_seconds() - cpu_before
                idle = time.monotonic() - wall_before
                print(f"idle daemon (every load balancer deep-read, next cycle an hour away): {cpu:.3f} s CPU over "
                      f"{idle:.0f} s ({100 * cpu / idle:.3f}% of one core), RSS {daemon.rss_mib():.1f} MiB, "
                      f"peak {proc_status_mib(daemon.process.pid, 'VmHWM'):.1f} MiB", flush=True)
            finally:
                daemon.stop()
        finally:
            proxy.stop()
    finally:
        moto.stop()


PAUSE_CONFIG = """
[guard]
new_load_balancer_grace = "0s"

[[guard.pausers]]
type = "dynamodb_flag"
"""


def time_to_pause(args, fleet, moto, n, workdir):
    """A daemon with the default interval (30 s) and budget; once it has run a complete
    cycle, a fraction of the records is deleted, and the time until `lbrecon_scaling_paused` is
    1 is measured (confirmation over `confirm_cycles` complete cycles, or at once on mass loss).
    The records are written back afterwards."""
    config, port = write_config(workdir, f"pause-{n}", "30s", BUDGET_ON)
    config.write_text(config.read_text() + PAUSE_CONFIG)
    env = aws_env(moto.endpoint)
    init = subprocess.run([args.binary, "--config", str(config), "init", "--target", "bench", "--approve", "BENCH-1"],
                          env=env, capture_output=True, text=True)
    if init.returncode != 0:
        raise RuntimeError(f"lbrecon init failed: {init.stderr}")
    daemon = BenchDaemon(args.binary, config, moto.endpoint, port, workdir / f"pause-{n}.log")
    deleted = sorted(fleet.records)[:: max(1, round(1 / args.pause))]
    try:
        wait_for(lambda: daemon.cycles() >= 1, timeout=3600, interval=0.5, what="the first cycle")
        cycles_before = daemon.cycles()
        first = time.monotonic()
        for name in deleted:
            fleet.delete_record("lb-state", name)
        gone = time.monotonic()

        def paused():
            try:
                return metric(daemon.metrics()[0], "lbrecon_scaling_paused", target="bench") == 1
            except requests.RequestException:
                return False

        wait_for(paused, timeout=3600, interval=0.2, what="the pause")
        print(f"time to pause: {len(deleted)} of {n} records deleted ({100 * len(deleted) / n:.1f}%), paused "
              f"{time.monotonic() - gone:.1f} s after the last delete ({time.monotonic() - first:.1f} s after the "
              f"first; deleting took {gone - first:.1f} s), {daemon.cycles() - cycles_before} cycles completed "
              f"meanwhile, the one in flight at the first delete included (interval 30 s, default budget and "
              f"guard, grace 0 s)", flush=True)
    finally:
        daemon.stop()
        fleet.write_records("lb-state", deleted)


def soak(args, workdir):
    moto = Moto()
    try:
        build(moto.endpoint, args.soak_fleet)
        config, port = write_config(workdir, "soak", "50ms", BUDGET_OFF)
        daemon = BenchDaemon(args.binary, config, moto.endpoint, port, workdir / "soak.log")
        try:
            print(f"\n== soak: {args.soak} cycles of {args.soak_fleet} load balancers, 50 ms apart", flush=True)
            mark = 100
            started = time.monotonic()
            while mark <= args.soak:
                wait_for(lambda: daemon.cycles() >= mark, timeout=3600, interval=0.5, what=f"cycle {mark}")
                print(f"cycle {mark}: RSS {daemon.rss_mib():.1f} MiB, {time.monotonic() - started:.0f} s", flush=True)
                mark += 100
        finally:
            daemon.stop()
    finally:
        moto.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,3000")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measurement")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--soak", type=int, default=0, help="cycles of the soak (0: none)")
    parser.add_argument("--soak-fleet", type=int, default=50)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lbrecon"))
    parser.add_argument("--pause", type=float, default=0.0, metavar="FRACTION",
                        help="delete this fraction of the records under a running daemon and time the pause")
    parser.add_argument("--pause-only", action="store_true", help="with --pause: measure nothing else")
    parser.add_argument("--also", action="append", default=[], metavar="BINARY",
                        help="another lbrecon build to run the same check with, for side-by-side figures")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lbrecon-bench-"))
    for n in [int(size) for size in args.sizes.split(",") if size]:
        bench_size(args, n, workdir)
    if args.soak:
        soak(args, workdir)


if __name__ == "__main__":
    main()
