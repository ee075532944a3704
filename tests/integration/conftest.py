"""The integration tests' fixtures: a moto server on a free loopback port for the whole session
(reset before each test), lbrecon commands and daemons against it, and fault proxies. The
harness itself is the lbrecon_harness package (harness/)."""

from collections import Counter

import pytest
from lbrecon_harness.faultproxy import FaultProxy
from lbrecon_harness.lbrecon import Daemon, Lbrecon
from lbrecon_harness.moto_server import Moto
from lbrecon_harness.operations import write_operations
from lbrecon_harness.paths import ROOT

# Every AWS request lbrecon sends in this session: (command, service, operation, table).
# Written to target/aws-operations.json at the end (one file per worker under pytest-xdist,
# whose workers each run this session fixture: their own moto server and recorder);
# tests/iam_exact.py holds it against the shipped IAM policies.
SEEN = Counter()


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
    write_operations(SEEN)


@pytest.fixture
def moto(moto_server):
    moto_server.reset()
    return moto_server


@pytest.fixture
def lbrecon(moto, tmp_path):
    return Lbrecon(moto.endpoint, tmp_path)


@pytest.fixture
def proxy(moto):
    server = FaultProxy(moto.endpoint)
    yield server
    server.stop()


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
