"""Holds the shipped IAM policies against what lbrecon really calls.

The integration suite sends every request through a recording proxy and writes what lbrecon
sent, by command, to target/aws-operations.json (the moto_server fixture in
tests/integration/conftest.py, with harness/lbrecon_harness/operations.py). This check maps each
call to the IAM action and resource it needs and asserts, per policy, that every call is allowed
and that nothing is granted that no call needs:

- deploy/iam/lbrecon-daemon-policy.json: `run`, `check`, `status`, `validate`;
- deploy/iam/lbrecon-operator-policy.json: every command but `run`.

./scripts/test.sh runs it after the suite: `python tests/iam_exact.py target/aws-operations*.json`
(target/aws-operations.json, or one file per worker when the suite ran under pytest-xdist: the
files' calls are taken together).
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {
    "deploy/iam/lbrecon-daemon-policy.json": {"run", "check", "status", "validate"},
    "deploy/iam/lbrecon-operator-policy.json": {
        "check", "status", "snapshots", "restore", "adopt", "init", "pause", "resume", "validate", "history"},
}
# A transaction's parts need the permission of the single-item call they stand for.
TRANSACTION_PARTS = {"Put": "PutItem", "ConditionCheck": "ConditionCheckItem", "Update": "UpdateItem",
                     "Delete": "DeleteItem"}
S3_ACTIONS = {"ListObjectsV2": "ListBucket", "ListObjects": "ListBucket", "HeadObject": "GetObject"}
# STS calls no shipped policy grants: `GetCallerIdentity` (the account that keys the API budget)
# needs no permission at all, and `AssumeRole` of a target's role is allowed to the caller's own
# identity (deploy/iam/README.md), not by the policy attached to that role.
NO_GRANT_NEEDED = {("sts", "GetCallerIdentity"), ("sts", "AssumeRole")}


def table_role(name):
    """The suite names tables after their role, as the shipped policies do."""
    if "lease" in name:
        return "lease-table"
    if "control" in name or "ctl" in name:
        return "control-table"
    return "state-table"


def needed(service, operation, table):
    """(IAM action, resource) a call needs, or None when the shipped policies have no say."""
    if (service, operation) in NO_GRANT_NEEDED:
        return None
    if service == "dynamodb":
        return f"dynamodb:{TRANSACTION_PARTS.get(operation, operation)}", table_role(table)
    if service == "s3":
        return f"s3:{S3_ACTIONS.get(operation, operation)}", "snapshot-bucket"
    return f"{service}:{operation}", "*"


def resource_role(arn):
    if arn == "*" or arn.startswith("arn:aws:autoscaling:"):
        return "*"
    if arn.startswith("arn:aws:s3:::"):
        return "snapshot-bucket"
    if ":table/" in arn:
        return table_role(arn.rsplit("/", 1)[1])
    raise SystemExit(f"unexpected resource {arn} in a policy: teach tests/iam_exact.py its role")


def granted(policy):
    grants = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow", statement
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        for action in statement["Action"]:
            for resource in resources:
                grants.add((action, resource_role(resource)))
    return grants


def main(paths):
    records = [record for path in paths for record in json.loads(Path(path).read_text())]
    if not records:
        raise SystemExit(f"no call recorded in {', '.join(map(str, paths))}: run the whole integration suite first")
    calls = {}
    for app, service, operation, table, count in records:
        command = app.removeprefix("lbrecon-")
        need = needed(service, operation, table)
        if need is not None:
            calls.setdefault(command, set()).add(need)
    unknown = set(calls) - set().union(*POLICIES.values())
    failures = []
    if unknown:
        failures.append(f"calls from commands no policy covers: {sorted(unknown)}")
    for policy_path, commands in POLICIES.items():
        grants = granted(json.loads((ROOT / policy_path).read_text()))
        used = set().union(*(calls.get(command, set()) for command in commands))
        for action, resource in sorted(used - grants):
            who = sorted(c for c in commands if (action, resource) in calls.get(c, set()))
            failures.append(f"{policy_path}: {action} on {resource} is called (by {', '.join(who)}) but not granted")
        for action, resource in sorted(grants - used):
            failures.append(f"{policy_path}: {action} on {resource} is granted but no call in the suite needs it")
        print(f"{policy_path}: {len(grants)} grants, {len(used)} used")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        raise SystemExit(1)
    print("IAM policies: every call allowed, nothing more granted")


if __name__ == "__main__":
    main(sys.argv[1:] or [ROOT / "target" / "aws-operations.json"])
