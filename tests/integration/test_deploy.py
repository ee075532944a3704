"""The shipped deployment files: alert rules and their unit tests (promtool), the systemd unit
(systemd-analyze), the Grafana dashboard, the IAM policy."""

import json
import re
import shutil
import subprocess

import pytest
from lbrecon_harness.paths import ROOT

DEPLOY = ROOT / "deploy"
SPEC_METRICS = {
    "lbrecon_cycles_total", "lbrecon_cycle_duration_seconds", "lbrecon_last_complete_cycle_timestamp_seconds",
    "lbrecon_load_balancers", "lbrecon_drift_load_balancers", "lbrecon_drift_changes", "lbrecon_load_balancer_drift",
    "lbrecon_scaling_paused", "lbrecon_guard_trips_total", "lbrecon_aws_requests_total",
    "lbrecon_aws_request_duration_seconds", "lbrecon_deep_check_age_seconds", "lbrecon_last_snapshot_timestamp_seconds",
    "lbrecon_quarantined_load_balancers", "lbrecon_state_table_protection", "lbrecon_leader", "lbrecon_build_info",
    "lbrecon_pause_undone_total", "lbrecon_pauser_failures_total", "lbrecon_stream_records_total",
    "lbrecon_stream_lag_seconds", "lbrecon_journal_last_timestamp_seconds", "lbrecon_recovery_check_mismatches",
}


def tool(name, package):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's {package} package (./scripts/test.sh does)")
    return path


def metric_names(text):
    names = set(re.findall(r"\blbrecon_[a-z_]+", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def test_alert_rules_check_and_pass_their_unit_tests():
    promtool = tool("promtool", "prometheus")
    check = subprocess.run([promtool, "check", "rules", "lbrecon-alerts.yml"], cwd=DEPLOY / "prometheus",
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run([promtool, "test", "rules", "lbrecon-alerts.test.yml"], cwd=DEPLOY / "prometheus",
                          capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def test_every_alert_is_unit_tested_firing_and_not_firing():
    rules = (DEPLOY / "prometheus" / "lbrecon-alerts.yml").read_text()
    tests = (DEPLOY / "prometheus" / "lbrecon-alerts.test.yml").read_text()
    alerts = set(re.findall(r"- alert: (\w+)", rules))
    assert {"LbreconStateDataMissing", "LbreconDriftPresent", "LbreconScalingPaused", "LbreconNoCompleteCycle",
            "LbreconAbsent", "LbreconIncompleteCycles", "LbreconStateTableUnprotected"} <= alerts
    for alert in alerts:
        blocks = re.findall(rf"alertname: {alert}\n\s+exp_alerts:(.*?)(?=\n\s+- eval_time|\n\s*- name:|\Z)", tests, re.S)
        assert any(block.strip() == "[]" for block in blocks), f"{alert} is never tested not firing"
        assert any(block.strip() != "[]" for block in blocks), f"{alert} is never tested firing"
    assert metric_names(rules) <= SPEC_METRICS


def test_the_systemd_unit_verifies_and_is_hardened(tmp_path):
    analyze = tool("systemd-analyze", "systemd")
    binary = ROOT / "target" / "debug" / "lbrecon"
    unit = tmp_path / "lbrecon.service"
    unit.write_text((DEPLOY / "systemd" / "lbrecon.service").read_text().replace("/usr/local/bin/lbrecon", str(binary)))
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    security = subprocess.run([analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True)
    found = re.search(r"Overall exposure level for lbrecon\.service: ([0-9.]+)", security.stdout)
    assert found, security.stdout + security.stderr
    assert float(found.group(1)) < 2.0, security.stdout
    text = unit.read_text()
    for setting in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "StateDirectory=lbrecon"):
        assert setting in text


def test_the_dashboard_uses_only_lbrecon_metrics():
    dashboard = json.loads((DEPLOY / "grafana" / "lbrecon-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    used = metric_names("\n".join(exprs))
    assert used <= SPEC_METRICS, used - SPEC_METRICS
    for name in ("lbrecon_drift_load_balancers", "lbrecon_cycle_duration_seconds", "lbrecon_aws_requests_total",
                 "lbrecon_scaling_paused"):
        assert name in used, name
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_the_iam_policy_grants_no_elb_write():
    policy = json.loads((DEPLOY / "iam" / "lbrecon-daemon-policy.json").read_text())
    actions = [a for statement in policy["Statement"] for a in statement["Action"]]
    for action in actions:
        service, _, name = action.partition(":")
        assert "*" not in name, action
        if service == "elasticloadbalancing":
            assert name.startswith("Describe"), action
    state_statements = [s for s in policy["Statement"] if s["Resource"] == "arn:aws:dynamodb:*:*:table/lb-state"]
    assert state_statements
    state_actions = {a for s in state_statements for a in s["Action"]}
    assert state_actions <= {"dynamodb:Scan", "dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups",
                             "dynamodb:GetResourcePolicy", "dynamodb:GetItem", "dynamodb:Query"}, state_actions


def test_the_ecs_task_definition_checks_health_and_outlasts_a_cycle():
    task = json.loads((DEPLOY / "ecs" / "task-definition.json").read_text())
    container = task["containerDefinitions"][0]
    assert "/healthz" in " ".join(container["healthCheck"]["command"])
    assert container["stopTimeout"] > 60
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    json.loads((DEPLOY / "ecs" / "service.json").read_text())
