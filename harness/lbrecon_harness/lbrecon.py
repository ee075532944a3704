"""The lbrecon binary under test: its environment against an emulator endpoint, one-shot
commands (`Lbrecon`) and `lbrecon run` daemons (`Daemon`)."""

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import requests

from lbrecon_harness.metrics import parse_metrics
from lbrecon_harness.paths import ROOT


def lbrecon_binary():
    path = Path(os.environ.get("LBRECON_BIN", ROOT / "target" / "debug" / "lbrecon"))
    if not path.exists():
        pytest.fail(f"lbrecon binary not found at {path}: run `cargo build` first, or ./scripts/test.sh")
    return path


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
