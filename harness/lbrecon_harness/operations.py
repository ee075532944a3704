"""The AWS calls the suite saw, written for tests/iam_exact.py to hold the shipped IAM policies
against.

Every request lbrecon sends goes through a recording proxy that counts it by (command, service,
operation, table); at the end of the session the counts are written to
target/aws-operations.json."""

import json

from lbrecon_harness.paths import ROOT

OPERATIONS_FILE = ROOT / "target" / "aws-operations.json"


def write_operations(seen, path=OPERATIONS_FILE):
    """Writes a Counter of (command, service, operation, table) as sorted
    [command, service, operation, table, count] rows."""
    path.write_text(json.dumps(sorted(list(key) + [count] for key, count in seen.items()), indent=1))
