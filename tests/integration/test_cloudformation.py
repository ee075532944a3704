"""deploy/cloudformation/lbrecon.yaml: cfn-lint finds nothing; its roles grant exactly the shipped
IAM policies (deploy/iam/*.json) with this stack's names filled in; the tables, the bucket and the
service are set up as the README says; the config it hands the tasks passes `lbrecon validate`.
And deploy/iam/state-table-resource-policy.json leaves every call lbrecon makes on the state table
alone while it denies the deletes."""

import fnmatch
import json
import re
import shutil
import subprocess

import pytest
import yaml
from lbrecon_harness.lbrecon import lbrecon_binary
from lbrecon_harness.paths import ROOT

TEMPLATE = ROOT / "deploy" / "cloudformation" / "lbrecon.yaml"
IAM = ROOT / "deploy" / "iam"
# What the shipped JSON policies name, for what the template names with its own resources.
SHIPPED_NAMES = {
    "${AWS::Partition}": "aws",
    "${AWS::Region}": "*",
    "${AWS::AccountId}": "*",
    "${StateTableName}": "lb-state",
    "${ControlTable}": "lb-state-control",
    "${LeaseTable}": "lbrecon-leases",
    "${SnapshotBucket}": "my-lbrecon-snapshots",
}


@pytest.fixture(scope="module")
def template():
    return yaml.safe_load(TEMPLATE.read_text())


def as_shipped(value):
    """A template value with the stack's names replaced by those of the shipped JSON policies."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        for placeholder, name in SHIPPED_NAMES.items():
            text = text.replace(placeholder, name)
        assert "${" not in text, f"unmapped placeholder in {text}"
        return text
    if isinstance(value, list):
        return [as_shipped(v) for v in value]
    if isinstance(value, dict):
        return {k: as_shipped(v) for k, v in value.items()}
    return value


def role_policy(template, role, name):
    (policy,) = [p for p in template["Resources"][role]["Properties"]["Policies"]
                 if isinstance(p, dict) and p.get("PolicyName") == name]
    return policy["PolicyDocument"]


def test_cfn_lint_finds_nothing():
    cfn_lint = shutil.which("cfn-lint")
    if cfn_lint is None:
        pytest.fail("cfn-lint not found: install it with `pip install -r tests/requirements.txt` (./scripts/test.sh does)")
    result = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("role, name, shipped", [
    ("TaskRole", "lbrecon-daemon", "lbrecon-daemon-policy.json"),
    ("OperatorRole", "lbrecon-operator", "lbrecon-operator-policy.json"),
])
def test_the_roles_grant_exactly_the_shipped_policies(template, role, name, shipped):
    in_template = as_shipped(role_policy(template, role, name))
    assert in_template == json.loads((IAM / shipped).read_text())


def test_the_daemon_role_may_assume_only_the_fleet_role_of_the_fleet_accounts(template):
    policies = template["Resources"]["TaskRole"]["Properties"]["Policies"]
    (conditional,) = [p for p in policies if "Fn::If" in p]
    condition, policy, otherwise = conditional["Fn::If"]
    assert condition == "HasFleetAccounts" and otherwise == {"Ref": "AWS::NoValue"}
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${FleetRoleName}"}
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceAccount": {"Ref": "FleetAccountIds"}}}


def test_tables_bucket_and_service_are_protected_and_replicated(template):
    resources = template["Resources"]
    for table in ("ControlTable", "LeaseTable"):
        resource = resources[table]
        props = resource["Properties"]
        assert resource["DeletionPolicy"] == "Retain", table
        assert props["DeletionProtectionEnabled"] is True, table
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, table
        assert props["KeySchema"] == [{"AttributeName": "target", "KeyType": "HASH"}], table
    bucket = resources["SnapshotBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert [rule["Status"] for rule in bucket["LifecycleConfiguration"]["Rules"]] == ["Enabled"]
    service = resources["Service"]["Properties"]
    assert service["DesiredCount"] == 2
    container = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert "/healthz" in " ".join(container["HealthCheck"]["Command"])
    assert container["StopTimeout"] > 60
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "LogGroup"}


def task_config(template, extra=""):
    """The config the tasks get, with the stack's names filled in as CloudFormation would."""
    container = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    (config,) = [e["Value"]["Fn::Sub"] for e in container["Environment"] if e["Name"] == "LBRECON_CONFIG"]
    values = {"LeaseTable": "lbrecon-leases", "TargetName": "prod", "AWS::Region": "us-east-1",
              "StateTableName": "lb-state", "ControlTable": "lb-state-control",
              "SnapshotBucket": "lbrecon-snapshotbucket-abc123", "ExtraTargetsToml": extra}
    used = set(re.findall(r"\$\{([^}]+)\}", config))
    assert used <= set(values), used - set(values)
    return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], config)


@pytest.mark.parametrize("extra", ["", """
[[targets]]
name = "prod-usw2"
region = "us-west-2"
role_arn = "arn:aws:iam::210987654321:role/lbrecon"
state_table = "lb-state"
control_table = "lb-state-control"
"""])
def test_the_task_config_validates(template, tmp_path, extra):
    config = tmp_path / "lbrecon.toml"
    config.write_text(task_config(template, extra))
    result = subprocess.run([str(lbrecon_binary()), "--config", str(config), "validate"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lbrecon-leases" in result.stdout and "lbrecon-snapshotbucket-abc123" in result.stdout, result.stdout
    assert ("prod-usw2" in result.stdout) == bool(extra)


def test_the_state_table_policy_denies_deletes_but_not_what_lbrecon_calls():
    text = (IAM / "state-table-resource-policy.json").read_text()
    assert set(re.findall(r"\$\{([^}]+)\}", text)) == {"StateTableArn", "WriterRoleArn", "ChangeManagedRoleArn"}
    (statement,) = json.loads(text)["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": ["${WriterRoleArn}", "${ChangeManagedRoleArn}"]}}
    denied = statement["Action"]
    for action in ("dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteTable", "dynamodb:UpdateTable",
                   "dynamodb:UpdateContinuousBackups", "dynamodb:PartiQLDelete", "dynamodb:DeleteResourcePolicy",
                   "dynamodb:PutResourcePolicy"):
        assert any(fnmatch.fnmatchcase(action.lower(), d.lower()) for d in denied), action
    # Every action lbrecon's own policies use on the state table (restore's and adopt's
    # conditional PutItem, the daemon's reads) stays allowed for lbrecon's roles.
    for shipped in ("lbrecon-daemon-policy.json", "lbrecon-operator-policy.json"):
        policy = json.loads((IAM / shipped).read_text())
        used = {a for s in policy["Statement"] if s["Resource"] == "arn:aws:dynamodb:*:*:table/lb-state"
                for a in s["Action"]}
        assert "dynamodb:Scan" in used
        for action in used:
            assert not any(fnmatch.fnmatchcase(action.lower(), d.lower()) for d in denied), (shipped, action)
