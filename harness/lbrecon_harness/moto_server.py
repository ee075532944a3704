"""The AWS emulator: a moto server on a free loopback port, started and stopped by its PID."""

import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from lbrecon_harness.paths import ROOT


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
