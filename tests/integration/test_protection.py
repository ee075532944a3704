"""The state table's protection (docs/architecture.md#guard, issue 20): point-in-time recovery, deletion protection and
the resource policy that keeps deletes behind change management, as `lbrecon run` exports them
(`lbrecon_state_table_protection{kind}`) and `lbrecon status` shows them, with the shipped
policy, without one, with one that leaves deletes open, and with the policy unreadable."""

import json
import shutil
import subprocess

import pytest
from lbrecon_harness.config import daemon_config
from lbrecon_harness.fleet import Fleet, clients, wait_for
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port
from lbrecon_harness.paths import ROOT

T = "prod-use1"
TABLE = "lb-state"
WRITER = "arn:aws:iam::123456789012:role/control-plane-writer"
CHANGE_MANAGED = "arn:aws:iam::123456789012:role/lb-state-change-managed"
SHIPPED = ROOT / "deploy" / "iam" / "state-table-resource-policy.json"


def shipped_policy(table_arn):
    """deploy/iam/state-table-resource-policy.json with its placeholders filled in."""
    return (SHIPPED.read_text()
            .replace("${StateTableArn}", table_arn)
            .replace("${WriterRoleArn}", WRITER)
            .replace("${ChangeManagedRoleArn}", CHANGE_MANAGED))


def open_policy(table_arn):
    """A policy that denies deletes to no one in particular: its exemption is a wildcard."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "WriterMayWrite", "Effect": "Allow", "Principal": {"AWS": WRITER},
             "Action": "dynamodb:*", "Resource": table_arn},
            {"Sid": "DenyDeletes", "Effect": "Deny", "Principal": "*",
             "Action": ["dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLDelete",
                        "dynamodb:DeleteTable"],
             "Resource": table_arn,
             "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}}},
        ],
    })


@pytest.fixture
def fleet(moto):
    fleet = Fleet(moto.endpoint)
    fleet.alb("web-0")
    fleet.alb("web-1")
    return fleet


def state_table(fleet, policy=None, pitr=True, deletion_protection=True):
    """Creates the state table with the given protection and writes the fleet's records."""
    dynamodb = clients(fleet.endpoint, fleet.region)["dynamodb"]
    arn = dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        DeletionProtectionEnabled=deletion_protection,
    )["TableDescription"]["TableArn"]
    if pitr:
        dynamodb.update_continuous_backups(
            TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    if policy is not None:
        dynamodb.put_resource_policy(ResourceArn=arn, Policy=policy(arn))
    fleet.write_records(TABLE)
    return arn


def start(lbrecon, daemons, endpoint=None):
    port = free_port()
    lbrecon.write_config(daemon_config(port))
    if endpoint:
        lbrecon.endpoint = endpoint
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    return daemon


def protection_series(daemon):
    """{kind: value} of lbrecon_state_table_protection, once the daemon has read it."""
    samples, types = daemon.metrics()
    assert types.get("lbrecon_state_table_protection") in (None, "gauge")
    return {dict(labels)["kind"]: value for (name, labels), value in samples.items()
            if name == "lbrecon_state_table_protection" and dict(labels).get("target") == T}


def read_protection(daemon, kinds):
    """Waits until the daemon exports exactly `kinds` (the hourly read runs after the first cycle)."""
    return wait_for(lambda: (series := protection_series(daemon)) and set(series) == set(kinds) and series,
                    timeout=30, what=f"protection series {sorted(kinds)}")


def status(lbrecon):
    result = lbrecon.run("status", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = json.loads(result.stdout)["targets"]
    return line


def test_the_shipped_policy_counts_as_in_force(lbrecon, fleet, daemons):
    state_table(fleet, policy=shipped_policy)
    daemon = start(lbrecon, daemons)
    assert read_protection(daemon, {"pitr", "deletion_protection", "delete_policy"}) == {
        "pitr": 1.0, "deletion_protection": 1.0, "delete_policy": 1.0}
    assert "the state table's protection is off" not in daemon.output()

    line = status(lbrecon)
    assert line["protection"] == {"pitr": True, "deletion_protection": True, "delete_policy": True}
    assert "protection_notes" not in line
    table = lbrecon.run("status")
    assert "state table protection: pitr on, deletion_protection on, delete_policy on" in table.stdout, table.stdout


def test_no_policy_and_no_backups_are_off(lbrecon, fleet, daemons):
    state_table(fleet, policy=None, pitr=False, deletion_protection=False)
    daemon = start(lbrecon, daemons)
    assert read_protection(daemon, {"pitr", "deletion_protection", "delete_policy"}) == {
        "pitr": 0.0, "deletion_protection": 0.0, "delete_policy": 0.0}
    wait_for(lambda: "the table has no resource policy" in daemon.output(), what="the log line of the missing policy")
    assert "the state table's protection is off" in daemon.output()

    line = status(lbrecon)
    assert line["protection"] == {"pitr": False, "deletion_protection": False, "delete_policy": False}
    assert "delete_policy: the table has no resource policy" in line["protection_notes"], line


def test_a_policy_that_leaves_deletes_open_is_off_and_says_what(lbrecon, fleet, daemons):
    state_table(fleet, policy=open_policy)
    daemon = start(lbrecon, daemons)
    assert read_protection(daemon, {"pitr", "deletion_protection", "delete_policy"})["delete_policy"] == 0.0
    wait_for(lambda: "does not deny dynamodb:DeleteItem" in daemon.output(), what="the log line naming the open deletes")
    assert "by wildcard" in daemon.output()

    line = status(lbrecon)
    assert line["protection"] == {"pitr": True, "deletion_protection": True, "delete_policy": False}
    (note,) = line["protection_notes"]
    assert note.startswith("delete_policy: the resource policy does not deny dynamodb:DeleteItem"), note
    assert "statement DenyDeletes" in note, note


def test_a_policy_that_cannot_be_read_is_unknown_not_off(lbrecon, fleet, daemons, proxy):
    state_table(fleet, policy=shipped_policy)
    proxy.fail("GetResourcePolicy", "access_denied", times=1)
    daemon = start(lbrecon, daemons, endpoint=proxy.endpoint)
    # The other two are read and exported; delete_policy has no series at all.
    assert read_protection(daemon, {"pitr", "deletion_protection"}) == {"pitr": 1.0, "deletion_protection": 1.0}
    wait_for(lambda: "is unknown" in daemon.output(), what="the log line of the unknown protection")
    log = daemon.output()
    assert "GetResourcePolicy failed: AccessDeniedException" in log, log
    assert "for state table lb-state" in log, log
    assert "the state table's protection is off" not in log
    assert metric(daemon.metrics()[0], "lbrecon_state_table_protection", target=T, kind="delete_policy") is None
    assert proxy.operations().get(("dynamodb", "GetResourcePolicy")) == 1
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install Debian's prometheus package (./scripts/test.sh does)")
    # The family as exposed, HELP and TYPE kept while its delete_policy series is left out.
    family = "".join(line + "\n" for line in daemon.get("/metrics").text.splitlines()
                     if "lbrecon_state_table_protection" in line)
    assert "# HELP lbrecon_state_table_protection" in family and 'kind="pitr"' in family, family
    lint = subprocess.run([promtool, "check", "metrics"], input=family, capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr

    proxy.fail("GetResourcePolicy", "access_denied", times=1)
    line = status(lbrecon)
    assert line["protection"] == {"pitr": True, "deletion_protection": True, "delete_policy": None}
    (note,) = line["protection_notes"]
    assert note.startswith("delete_policy: unknown: GetResourcePolicy failed: AccessDeniedException"), note
    proxy.fail("GetResourcePolicy", "access_denied", times=1)
    table = lbrecon.run("status")
    assert "delete_policy unknown" in table.stdout, table.stdout
    assert "delete_policy: unknown: GetResourcePolicy failed: AccessDeniedException" in table.stdout, table.stdout

    # Read again, the same policy is in force: the denial was the only reason it was unknown.
    assert status(lbrecon)["protection"]["delete_policy"] is True
