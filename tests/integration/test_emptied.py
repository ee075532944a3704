"""State data emptied, not deleted (issue 21): records overwritten with a `config` that manages
nothing, the way a pipeline emptied load-balancer configurations in the Google Cloud
load-balancing incident of 21 September 2023. Such a record is an invalid record, never
`in_sync`: `check` says so, the guard counts it as lost, and `restore --replace-invalid` puts the
snapshot's version back. Also `records.required`."""

import json
import threading
from lbrecon_harness.config import FAST_AWS, daemon_config, target_config
from lbrecon_harness.fleet import Fleet, add_web, control_item, create_state_table, table_items, wait_for
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port

T = {"target": "prod-use1"}
EMPTY = "emptied: manages nothing, config is empty"
NAME_ONLY = "emptied: manages nothing, config holds no field but name"

CHECK_CONFIG = f"""
[snapshots]
dir = "/var/lib/lbrecon/snapshots"
{target_config()}
{FAST_AWS}
"""

GUARD = """
[guard]
min_missing = 1
max_missing_ratio = 0.05
confirm_cycles = 2
new_load_balancer_grace = "0s"

[[guard.pausers]]
type = "dynamodb_flag"
"""


def empty_records(fleet, names):
    """Overwrites the records of `names` as the incident did: the version bumped, every other
    attribute kept, `config` emptied: `{}` for the first, second, ...; only the name for every
    other one. Returns the reason each should be reported with."""
    table = fleet.c["dynamodb_resource"].Table("lb-state")
    expected = {}
    with table.batch_writer() as batch:
        for i, name in enumerate(names):
            item = fleet.item(name, version=2)
            if i % 2 == 0:
                item["config"] = {}
                expected[name] = EMPTY
            else:
                item["config"] = {"name": name}
                expected[name] = NAME_ONLY
            batch.put_item(Item=item)
    return expected


def by_name(target):
    return {lb["name"]: lb for lb in target["load_balancers"]}


def test_emptied_records_are_invalid_in_check_never_in_sync(lbrecon, moto):
    fleet = Fleet(moto.endpoint)
    names = [f"lb-{i:02d}" for i in range(20)]
    for name in names:
        fleet.bare(name)
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    lbrecon.write_config(CHECK_CONFIG)
    lbrecon.check_json(expect=0)

    emptied = empty_records(fleet, names[3:8])
    # Both shapes were written as the test means them to be.
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    assert items["lb-03"]["config"] == {"M": {}}
    assert items["lb-04"]["config"] == {"M": {"name": {"S": "lb-04"}}}
    assert items["lb-04"]["version"] == {"N": "2"}

    _, report = lbrecon.check_json(expect=2)
    target = report["targets"][0]
    assert target["complete"] is True
    assert target["summary"]["invalid_record"] == 5
    assert target["summary"]["in_sync"] == 15
    assert target["summary"]["recorded"] == 20
    lbs = by_name(target)
    assert sorted(lbs) == sorted(emptied)
    for name, reason in emptied.items():
        assert lbs[name] == {"name": name, "kind": "invalid_record", "changes": [], "reason": reason}, name

    table = lbrecon.run("check")
    assert table.returncode == 2, table.stdout + table.stderr
    assert "lb-03" in table.stdout and EMPTY in table.stdout
    assert NAME_ONLY in table.stdout


def test_a_tags_only_record_is_valid_unless_listeners_are_required(lbrecon, moto):
    fleet = Fleet(moto.endpoint)
    lb = fleet.elb.create_load_balancer(Name="tagged", Subnets=fleet.subnets, Scheme="internal",
                                        Type="application", Tags=[{"Key": "team", "Value": "edge"}])
    fleet.arns["tagged"] = lb["LoadBalancers"][0]["LoadBalancerArn"]
    fleet.records["tagged"] = {"name": "tagged", "tags": {"team": "edge"}}
    add_web(fleet, "web")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")

    lbrecon.write_config(CHECK_CONFIG)
    _, report = lbrecon.check_json(expect=0)
    assert report["targets"][0]["summary"]["in_sync"] == 2

    lbrecon.write_config(CHECK_CONFIG + '\n[records]\nrequired = ["listeners"]\n')
    _, report = lbrecon.check_json(expect=2)
    target = report["targets"][0]
    assert target["summary"]["in_sync"] == 1
    assert target["summary"]["invalid_record"] == 1
    assert by_name(target) == {
        "tagged": {
            "name": "tagged",
            "kind": "invalid_record",
            "changes": [],
            "reason": "config.listeners: missing, and records.required asks every record to hold it",
        }
    }


def test_validate_rejects_a_required_name_that_is_not_a_document_field(lbrecon):
    lbrecon.write_config(CHECK_CONFIG + '\n[records]\nrequired = ["type", "listener"]\n')
    bad = lbrecon.run("validate")
    assert bad.returncode == 78, bad.stdout + bad.stderr
    assert 'records.required[1]: "listener" is not a top-level field of the load-balancer document' in bad.stderr
    for field in ("name", "type", "scheme", "listeners", "target_groups"):
        assert field in bad.stderr.split("(one of ", 1)[1], bad.stderr
    assert "records.required[0]" not in bad.stderr
    # Every command refuses the config, not only validate.
    assert lbrecon.run("check").returncode == 78

    lbrecon.write_config(CHECK_CONFIG + '\n[records]\nrequired = ["type", "listeners"]\n')
    ok = lbrecon.run("validate")
    assert ok.returncode == 0, ok.stderr
    assert "[records]" in ok.stdout
    assert '"listeners"' in ok.stdout


def listed(lbrecon):
    result = lbrecon.run("snapshots", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["snapshots"]


def without_approval(item):
    return {k: v for k, v in item.items() if k != "lbrecon_restored"}


def test_emptying_a_fifth_of_the_table_pauses_at_once_and_restore_puts_it_back(lbrecon, moto, daemons, tmp_path):
    fleet = Fleet(moto.endpoint)
    names = [f"web-{i:02d}" for i in range(20)]
    for name in names:
        add_web(fleet, name)
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    port = free_port()
    lbrecon.write_config(daemon_config(port, extra=GUARD, snapshots=f'dir = "{tmp_path / "snapshots"}"'))
    assert lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-1").returncode == 0
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot of the full table")
    before = listed(lbrecon)[-1]
    assert before["records"] == 20
    original = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}

    def complete_cycles():
        return metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="complete") or 0

    def control():
        return control_item(fleet, "lb-state-control", "prod-use1")

    doomed = ["web-02", "web-05", "web-09", "web-13", "web-17"]
    cycles_before = complete_cycles()
    emptied = empty_records(fleet, doomed)
    wait_for(lambda: control().get("paused"), timeout=30, interval=0.05, what="the pause")
    # Mass loss trips at once: the cycle in flight while the records were emptied, then one.
    assert complete_cycles() - cycles_before <= 2
    item = control()
    assert item["by"] == "lbrecon"
    assert item["reason"].startswith("mass loss: "), item["reason"]
    assert "of the 20 valid records at the high-water mark are gone or no longer valid" in item["reason"]
    wait_for(lambda: sorted(control()["missing"]) == doomed, timeout=10, what="every emptied record listed")
    # Confirmed for confirm_cycles complete cycles: quarantined, like records deleted.
    wait_for(lambda: sorted(control()["quarantine"]) == doomed, timeout=15, what="the quarantine")
    # The gauges follow the control item's write within the cycle.
    wait_for(lambda: metric(daemon.metrics()[0], "lbrecon_quarantined_load_balancers", **T) == 5, timeout=10,
             what="the quarantine exported")
    samples, _ = daemon.metrics()
    assert metric(samples, "lbrecon_scaling_paused", **T) == 1
    assert metric(samples, "lbrecon_guard_trips_total", **T) == 1
    assert metric(samples, "lbrecon_drift_load_balancers", **T, kind="invalid_record") == 5
    # The others are in sync once each has been deep-read (deep reads end when the next
    # presence pass is due, so a slow emulator spreads them over a few cycles).
    wait_for(lambda: metric(daemon.metrics()[0], "lbrecon_drift_load_balancers", **T, kind="in_sync") == 15,
             timeout=30, what="the other fifteen in sync")
    drift = daemon.get("/drift").json()
    reasons = {lb["name"]: lb.get("reason") for lb in drift["targets"][0]["load_balancers"]}
    assert reasons == emptied
    status = json.loads(lbrecon.run("status", "--format", "json").stdout)["targets"][0]
    assert status["paused"] is True
    assert sorted(status["quarantine"]) == doomed

    # The restore plan says what the table holds; without --replace-invalid nothing is written.
    plain = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", before["id"], "--dry-run")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "0 to write, 5 skipped" in plain.stdout
    for name, reason in emptied.items():
        assert f"{name}: the table's record is invalid ({reason}); --replace-invalid" in plain.stdout, plain.stdout
    dry = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", before["id"], "--replace-invalid", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "5 to write, 0 skipped, 15 present" in dry.stdout
    for name, reason in emptied.items():
        assert f"replace_invalid {name}: over the table's invalid record ({reason})" in dry.stdout, dry.stdout
    assert "nothing written" in dry.stdout
    versions = {item["name"]["S"]: item["version"]["N"] for item in table_items(fleet, "lb-state")}
    assert {name: versions[name] for name in doomed} == dict.fromkeys(doomed, "2")

    done = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", before["id"], "--replace-invalid",
                       "--approve", "CHG-21")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote 5 record(s)" in done.stdout
    after = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    for name in names:
        if name in doomed:
            assert without_approval(after[name]) == original[name], name
            assert after[name]["lbrecon_restored"]["M"]["ticket"]["S"] == "CHG-21"
            assert after[name]["lbrecon_restored"]["M"]["snapshot"]["S"] == before["id"]
        else:
            assert after[name] == original[name], name

    # The records are back: out of quarantine and no longer missing; the pause stays until a
    # person resumes it, which no longer needs --force.
    wait_for(lambda: control()["quarantine"] == [] and control()["missing"] == [], timeout=15,
             what="the quarantine cleared")
    assert control()["paused"]
    resumed = lbrecon.run("resume", "--target", "prod-use1", "--reason", "records restored (CHG-21)")
    assert resumed.returncode == 0, resumed.stderr
    assert not control()["paused"]
    again = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", before["id"], "--replace-invalid",
                        "--approve", "CHG-21")
    assert again.returncode == 0 and "nothing to write" in again.stdout
    daemon.stop()
    lbrecon.write_config(CHECK_CONFIG)
    _, report = lbrecon.check_json(expect=0)
    assert report["targets"][0]["summary"]["in_sync"] == 20


def test_a_replace_loses_to_a_record_written_meanwhile(lbrecon, moto, daemons, tmp_path, proxy):
    """The replace of an emptied record is conditioned on the version it was planned over: a
    write by the control plane between the plan and the write stands."""
    fleet = Fleet(moto.endpoint)
    for i in range(5):
        fleet.bare(f"lb-{i}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    port = free_port()
    lbrecon.write_config(daemon_config(port, extra=GUARD, snapshots=f'dir = "{tmp_path / "snapshots"}"'))
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot")
    daemon.stop()
    snapshot_id = listed(lbrecon)[-1]["id"]
    empty_records(fleet, ["lb-1", "lb-2"])

    # The pipeline empties lb-2 again (version 3) while the restore's write is in flight.
    rewritten = fleet.item("lb-2", version=3)
    rewritten["config"] = {}
    table = fleet.c["dynamodb_resource"].Table("lb-state")
    proxy.fail("TransactWriteItems", "delay", times=1, delay=1.5)
    writer = threading.Timer(0.5, lambda: table.put_item(Item=rewritten))
    writer.start()
    lbrecon.endpoint = proxy.endpoint
    result = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", snapshot_id, "--replace-invalid",
                         "--approve", "CHG-22")
    writer.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 to write" in result.stdout
    assert "lb-2: written by someone else meanwhile; theirs stands" in result.stdout
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    assert items["lb-1"]["version"]["N"] == "1"
    assert items["lb-1"]["config"]["M"]["scheme"]["S"] == "internal"
    assert "lbrecon_restored" in items["lb-1"]
    assert items["lb-2"]["version"]["N"] == "3"
    assert items["lb-2"]["config"] == {"M": {}}
    assert "lbrecon_restored" not in items["lb-2"]
