"""The integration-test harness: a moto server on a free loopback port for the whole session
(reset before each test), the lbrecon binary, and helpers to write configs and run commands."""

import json
import os
from collections import Counter
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lbrecon_binary():
    path = Path(os.environ.get("LBRECON_BIN", ROOT / "target" / "debug" / "lbrecon"))
    if not path.exists():
        pytest.fail(f"lbrecon binary not found at {path}: run `cargo build` first, or ./scripts/test.sh")
    return path


class Moto:
    """A moto server process started by this harness, stopped by its PID."""

    def __init__(self, command=None):
        """`command` replaces `moto_server` (a benchmark's patched launcher); it gets -H and -p."""
        if command is None and shutil.which("moto_server") is None:
            pytest.fail("moto_server not found: install it with `pip install -r tests/requirements.txt` (./scripts/test.sh does)")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(ROOT / "target" / f"moto-{self.port}.log", "w")
        self.process = subprocess.Popen(
            [*(command or ["moto_server"]), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.endpoint}/moto-api/", timeout=1)
                return
            except requests.RequestException:
                if self.process.poll() is not None:
                    raise RuntimeError(f"moto_server exited with {self.process.returncode}")
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto_server did not start within 30s")

    def reset(self):
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# Every AWS request lbrecon sends in this session: (command, service, operation, table).
# Written to target/aws-operations.json at the end; tests/iam_exact.py holds it against the
# shipped IAM policies.
SEEN = Counter()
OPERATIONS_FILE = ROOT / "target" / "aws-operations.json"


@pytest.fixture(scope="session")
def moto_server():
    (ROOT / "target").mkdir(exist_ok=True)
    server = Moto()
    # Everything reaches moto through a recording proxy, so the suite sees every call lbrecon
    # makes (fault proxies of single tests forward to it too).
    recorder = FaultProxy(server.endpoint, record=SEEN)
    server.direct_endpoint, server.endpoint = server.endpoint, recorder.endpoint
    yield server
    recorder.stop()
    server.stop()
    OPERATIONS_FILE.write_text(json.dumps(sorted(list(key) + [count] for key, count in SEEN.items()), indent=1))


@pytest.fixture
def moto(moto_server):
    moto_server.reset()
    return moto_server


def aws_env(endpoint):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        LBRECON_LOG=os.environ.get("LBRECON_LOG", "warn"),
    )
    return env


class Lbrecon:
    """Runs lbrecon commands against an endpoint with a config written in a temporary folder."""

    def __init__(self, endpoint, tmp_path):
        self.binary = lbrecon_binary()
        self.endpoint = endpoint
        self.tmp_path = tmp_path
        self.config_path = tmp_path / "lbrecon.toml"

    def write_config(self, text):
        self.config_path.write_text(textwrap.dedent(text))
        return self.config_path

    def run(self, *args, timeout=300, env=None):
        command = [str(self.binary), "--config", str(self.config_path), *args]
        return subprocess.run(
            command,
            env=env or aws_env(self.endpoint),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def check_json(self, *args, expect=None):
        result = self.run("check", "--format", "json", *args)
        if expect is not None:
            assert result.returncode == expect, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        return result.returncode, json.loads(result.stdout)


@pytest.fixture
def lbrecon(moto, tmp_path):
    return Lbrecon(moto.endpoint, tmp_path)


def target_config(name="prod-use1", region="us-east-1", state_table="lb-state", control_table="lb-state-control"):
    return f"""
[[targets]]
name = "{name}"
region = "{region}"
state_table = "{state_table}"
control_table = "{control_table}"
"""


FAST_AWS = """
[aws]
elb_requests_per_second = 1000
elb_burst = 1000
dynamodb_requests_per_second = 1000
concurrency = 8
"""


@pytest.fixture
def proxy(moto):
    from faultproxy import FaultProxy

    server = FaultProxy(moto.endpoint)
    yield server
    server.stop()


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} of a Prometheus text page, samples as
    exposed (histogram buckets as `_bucket`)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


def metric(samples, metric_name, **labels):
    return samples.get((metric_name, frozenset(labels.items())))


class Daemon:
    """An `lbrecon run` process started by a test, stopped by its PID."""

    def __init__(self, lbrecon, port, env=None, log_name="daemon.log"):
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = lbrecon.tmp_path / log_name
        self.log = open(self.log_path, "w")
        if env is None:
            env = aws_env(lbrecon.endpoint)
            env["LBRECON_LOG"] = "info"
        self.process = subprocess.Popen(
            [str(lbrecon.binary), "--config", str(lbrecon.config_path), "run"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path, method="GET", timeout=5):
        return requests.request(method, self.url + path, timeout=timeout)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"lbrecon exited with {self.process.returncode}:\n{self.output()}")
            try:
                if self.get("/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"lbrecon not ready after {timeout}s:\n{self.output()}")

    def metrics(self):
        return parse_metrics(self.get("/metrics").text)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def signal(self, sig):
        self.process.send_signal(sig)

    def wait(self, timeout):
        return self.process.wait(timeout=timeout)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def daemons():
    """Starts daemons with `daemons.start(lbrecon)`; stops every one at the end of the test."""
    started = []

    class Starter:
        def start(self, lbrecon, port, **kw):
            daemon = Daemon(lbrecon, port, **kw)
            started.append(daemon)
            return daemon

    yield Starter()
    for daemon in started:
        daemon.stop()


def daemon_config(port, interval="1s", extra="", snapshots=None):
    """A daemon config on `port`. `snapshots` is the [snapshots] table's body; by default a
    fresh temporary directory."""
    if snapshots is None:
        import tempfile

        snapshots = f'dir = "{tempfile.mkdtemp(prefix="lbrecon-snapshots-")}"'
    return f"""
[daemon]
interval = "{interval}"
jitter = 0.0
cycle_deadline = "20s"

[http]
listen = "127.0.0.1:{port}"

[[targets]]
name = "prod-use1"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"

[snapshots]
{snapshots}

[aws]
elb_requests_per_second = 1000
elb_burst = 1000
dynamodb_requests_per_second = 1000
concurrency = 8
{extra}
"""
