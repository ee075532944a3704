"""The AWS calls the suite saw, written for tests/iam_exact.py to hold the shipped IAM policies
against.

Every request lbrecon sends goes through a recording proxy that counts it by (command, service,
operation, table); at the end of the session the counts are written to
target/aws-operations.json, or, under pytest-xdist, to one file per worker
(target/aws-operations.gw0.json, ...) that tests/iam_exact.py reads together."""

import json
import os

from lbrecon_harness.paths import ROOT


def operations_file(worker=None):
    """This session's file: `worker` is pytest-xdist's worker id (PYTEST_XDIST_WORKER), None
    outside xdist."""
    if worker is None:
        worker = os.environ.get("PYTEST_XDIST_WORKER")
    name = f"aws-operations.{worker}.json" if worker else "aws-operations.json"
    return ROOT / "target" / name


def write_operations(seen, path=None):
    """Writes a Counter of (command, service, operation, table) as sorted
    [command, service, operation, table, count] rows."""
    path = path or operations_file()
    path.write_text(json.dumps(sorted(list(key) + [count] for key, count in seen.items()), indent=1))
