"""Snapshots, restore and adopt against moto, with the local and the S3 snapshot store."""

import datetime
import json
import threading
import time

import pytest
from lbrecon_harness.config import daemon_config
from lbrecon_harness.fleet import Fleet, create_state_table, table_items, wait_for
from lbrecon_harness.moto_server import free_port

BUCKET = "lbrecon-snapshots"


@pytest.fixture(params=["local", "s3"])
def store(request, moto, tmp_path):
    """The [snapshots] table of the config, and a way to read and overwrite a snapshot file."""
    if request.param == "local":
        directory = tmp_path / "snapshots"

        class Local:
            toml = f'dir = "{directory}"'

            def read(self, location):
                return open(location, "rb").read()

            def write(self, location, data):
                open(location, "wb").write(data)

        return Local()
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)

    class S3:
        toml = f'dir = "{tmp_path / "unused"}"\n\n[snapshots.s3]\nbucket = "{BUCKET}"\nprefix = "lbrecon/"'

        def read(self, location):
            key = location.removeprefix(f"s3://{BUCKET}/")
            return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

        def write(self, location, data):
            key = location.removeprefix(f"s3://{BUCKET}/")
            s3.put_object(Bucket=BUCKET, Key=key, Body=data)

    return S3()


@pytest.fixture
def fleet(moto):
    fleet = Fleet(moto.endpoint)
    for i in range(8):
        fleet.alb(f"web-{i}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    return fleet


def listed(lbrecon):
    result = lbrecon.run("snapshots", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["snapshots"]


def run_daemon(lbrecon, daemons, store, extra=""):
    port = free_port()
    lbrecon.write_config(daemon_config(port, extra=extra, snapshots=store.toml))
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    return daemon


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def item_without_approval(item):
    return {k: v for k, v in item.items() if k != "lbrecon_restored"}


def test_restore_to_before_the_deletion_keeps_later_writes(lbrecon, fleet, daemons, store):
    daemon = run_daemon(lbrecon, daemons, store)
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot")
    snapshot = listed(lbrecon)[-1]
    assert snapshot["target"] == "prod-use1"
    assert snapshot["records"] == 8
    assert snapshot["bytes"] > 0
    time.sleep(0.05)
    before_loss = now_rfc3339()
    original = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}

    for name in ("web-1", "web-2", "web-3"):
        fleet.delete_record("lb-state", name)
    # After the loss, the control plane rewrites web-4 (and, later still, web-3 itself).
    newer = fleet.item("web-4", version=2)
    newer["config"]["scheme"] = "internal"
    fleet.c["dynamodb_resource"].Table("lb-state").put_item(Item=newer)
    wait_for(lambda: len(listed(lbrecon)) >= 2, what="a snapshot of the loss")
    daemon.stop()

    dry = lbrecon.run("restore", "--target", "prod-use1", "--at", before_loss, "--dry-run", "--approve", "CHG-1")
    assert dry.returncode == 0, dry.stderr
    assert "3 to write" in dry.stdout and "nothing written" in dry.stdout
    assert len(table_items(fleet, "lb-state")) == 5
    no_ticket = lbrecon.run("restore", "--target", "prod-use1", "--at", before_loss)
    assert no_ticket.returncode == 0 and "nothing written" in no_ticket.stdout
    assert len(table_items(fleet, "lb-state")) == 5

    done = lbrecon.run("restore", "--target", "prod-use1", "--at", before_loss, "--approve", "CHG-1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote 3 record(s)" in done.stdout
    after = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    for name in ("web-1", "web-2", "web-3"):
        assert item_without_approval(after[name]) == original[name], name
        approval = after[name]["lbrecon_restored"]["M"]
        assert approval["ticket"]["S"] == "CHG-1"
        assert approval["snapshot"]["S"] == snapshot["id"]
        assert approval["time"]["S"]
    assert after["web-4"]["version"]["N"] == "2"
    assert after["web-4"]["config"]["M"]["scheme"]["S"] == "internal"

    again = lbrecon.run("restore", "--target", "prod-use1", "--at", before_loss, "--approve", "CHG-1")
    assert again.returncode == 0
    assert "nothing to write" in again.stdout
    assert table_items(fleet, "lb-state") == sorted(after.values(), key=lambda i: i["name"]["S"])

    code, report = lbrecon.check_json()
    changed = [lb["name"] for lb in report["targets"][0]["load_balancers"]]
    assert changed == ["web-4"], report


def test_a_write_during_the_restore_is_not_overwritten(lbrecon, fleet, daemons, store, proxy):
    daemon = run_daemon(lbrecon, daemons, store)
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot")
    daemon.stop()
    for name in ("web-5", "web-6"):
        fleet.delete_record("lb-state", name)
    racer = fleet.item("web-6", version=7)
    racer["config"]["scheme"] = "internet-facing"

    proxy.fail("TransactWriteItems", "delay", times=1, delay=1.5)
    writer = threading.Timer(0.5, lambda: fleet.c["dynamodb_resource"].Table("lb-state").put_item(Item=racer))
    writer.start()
    lbrecon.endpoint = proxy.endpoint
    result = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", listed(lbrecon)[-1]["id"], "--approve", "CHG-2")
    writer.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "web-6: written by someone else meanwhile; theirs stands" in result.stdout
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    assert items["web-6"]["version"]["N"] == "7"
    assert "lbrecon_restored" not in items["web-6"]
    assert "lbrecon_restored" in items["web-5"]


def test_a_corrupt_snapshot_is_a_clear_error_and_the_others_stay_usable(lbrecon, fleet, daemons, store):
    daemon = run_daemon(lbrecon, daemons, store)
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot")
    fleet.delete_record("lb-state", "web-7")
    wait_for(lambda: len(listed(lbrecon)) >= 2, what="a second snapshot")
    daemon.stop()
    good, bad = listed(lbrecon)[-2:]
    data = store.read(bad["location"])
    store.write(bad["location"], data[: len(data) // 2])

    broken = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", bad["id"], "--dry-run")
    assert broken.returncode == 1
    assert "corrupt or truncated" in broken.stderr
    assert bad["location"] in broken.stderr

    # Not gzip at all, or a valid file under another snapshot's name.
    store.write(bad["location"], b"not a snapshot")
    assert lbrecon.run("restore", "--target", "prod-use1", "--snapshot", bad["id"]).returncode == 1
    store.write(bad["location"], store.read(good["location"]))
    mismatch = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", bad["id"])
    assert mismatch.returncode == 1 and "does not match its name" in mismatch.stderr

    ok = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", good["id"], "--approve", "CHG-3")
    assert ok.returncode == 0, ok.stderr
    assert "wrote 1 record(s)" in ok.stdout
    assert len(listed(lbrecon)) >= 2


def test_gone_recreated_and_invalid_records(lbrecon, fleet, daemons, store):
    daemon = run_daemon(lbrecon, daemons, store)
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot")
    daemon.stop()
    snapshot_id = listed(lbrecon)[-1]["id"]
    # web-0 deleted for good; web-1 deleted and recreated; web-2's record corrupted.
    fleet.elb.delete_load_balancer(LoadBalancerArn=fleet.arns["web-0"])
    fleet.delete_record("lb-state", "web-0")
    fleet.elb.delete_load_balancer(LoadBalancerArn=fleet.arns["web-1"])
    fleet.elb.create_load_balancer(Name="web-1", Subnets=fleet.subnets, Type="application")
    fleet.delete_record("lb-state", "web-1")
    fleet.put_raw_item("lb-state", {"name": {"S": "web-2"}, "config": {"S": "corrupt"}, "version": {"N": "4"}})

    plan = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", snapshot_id, "--dry-run")
    assert plan.returncode == 0
    assert "web-0: its load balancer is not live" in plan.stdout
    assert "web-1: its load balancer was recreated since" in plan.stdout
    assert "web-2: the table's record is invalid" in plan.stdout
    assert "0 to write" in plan.stdout

    result = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", snapshot_id, "--replace-invalid",
                         "--include-gone", "--approve", "CHG-4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote 3 record(s)" in result.stdout
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    assert items["web-2"]["config"]["M"]["name"]["S"] == "web-2"


def test_snapshots_are_pruned_but_never_while_a_record_is_missing(lbrecon, fleet, daemons, store):
    store.toml = "keep = 2\n" + store.toml
    daemon = run_daemon(lbrecon, daemons, store)

    def newest():
        entries = listed(lbrecon)
        return entries[-1]["id"] if entries else None

    def change(write):
        last = newest()
        write()
        wait_for(lambda: newest() != last, what="a new snapshot")

    wait_for(newest, what="a first snapshot")
    table = fleet.c["dynamodb_resource"].Table("lb-state")
    for version in range(2, 6):
        change(lambda: table.put_item(Item=fleet.item("web-0", version=version)))
    assert len(listed(lbrecon)) == 2
    change(lambda: fleet.delete_record("lb-state", "web-1"))
    for version in range(6, 9):
        change(lambda: table.put_item(Item=fleet.item("web-0", version=version)))
    # While web-1 has no record nothing is pruned.
    assert len(listed(lbrecon)) == 6
    daemon.stop()


def test_adopt_bootstraps_records_from_live_state(lbrecon, moto, tmp_path):
    fleet = Fleet(moto.endpoint)
    for i in range(3):
        fleet.alb(f"web-{i}")
    fleet.nlb("db-0")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state", ["web-0"])
    lbrecon.write_config(daemon_config(free_port(), snapshots=f'dir = "{tmp_path / "snaps"}"'))

    dry = lbrecon.run("adopt", "--target", "prod-use1", "--all")
    assert dry.returncode == 0, dry.stderr
    assert "3 to write" in dry.stdout and "nothing written" in dry.stdout
    named = lbrecon.run("adopt", "--target", "prod-use1", "web-0", "nope", "--dry-run")
    assert "web-0: it has a record" in named.stdout and "nope: no live load balancer" in named.stdout

    done = lbrecon.run("adopt", "--target", "prod-use1", "--all", "--approve", "CHG-5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote 3 record(s)" in done.stdout
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    assert items["web-1"]["lbrecon_adopted"]["M"]["ticket"]["S"] == "CHG-5"
    assert items["web-1"]["version"]["N"] == "1"
    listeners = items["web-1"]["config"]["M"]["listeners"]["L"]
    assert [l["M"]["port"]["N"] for l in listeners] == ["80", "443"]
    code, report = lbrecon.check_json()
    assert code == 0, report
    assert report["targets"][0]["summary"]["in_sync"] == 4
    again = lbrecon.run("adopt", "--target", "prod-use1", "--all", "--approve", "CHG-5")
    assert again.returncode == 0 and "nothing to write" in again.stdout


def test_a_chunk_refused_for_one_item_writes_the_others(lbrecon, fleet, daemons, store, proxy):
    daemon = run_daemon(lbrecon, daemons, store)
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot")
    daemon.stop()
    lost = [f"web-{i}" for i in range(1, 7)]
    for name in lost:
        fleet.delete_record("lb-state", name)
    # DynamoDB refuses the whole transaction for one bad item, without saying which.
    proxy.refuse_item("web-4")
    lbrecon.endpoint = proxy.endpoint
    result = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", listed(lbrecon)[-1]["id"], "--approve", "CHG-6")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "wrote 5 record(s)" in result.stdout, result.stdout
    assert "web-4: FAILED: TransactWriteItems failed: ValidationException: Item size has exceeded" in result.stdout
    items = {item["name"]["S"] for item in table_items(fleet, "lb-state")}
    assert items == {f"web-{i}" for i in range(8)} - {"web-4"}


def test_an_item_cancelled_for_itself_fails_alone(lbrecon, fleet, daemons, store, proxy):
    daemon = run_daemon(lbrecon, daemons, store)
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot")
    daemon.stop()
    for name in ("web-1", "web-2", "web-3"):
        fleet.delete_record("lb-state", name)
    # The transaction is cancelled, web-2's reason its own (not a failed condition).
    proxy.refuse_item("web-2", whole=False)
    lbrecon.endpoint = proxy.endpoint
    result = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", listed(lbrecon)[-1]["id"], "--approve", "CHG-10")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "wrote 2 record(s)" in result.stdout, result.stdout
    assert "web-2: FAILED: ValidationError: One or more parameter values were invalid" in result.stdout
    assert "someone else" not in result.stdout
    # Refused once, not tried again; the others once more, without it.
    assert proxy.operations()[("dynamodb", "TransactWriteItems")] == 2
    items = {item["name"]["S"] for item in table_items(fleet, "lb-state")}
    assert items == {f"web-{i}" for i in range(8)} - {"web-2"}


def test_a_write_that_landed_though_its_answer_was_lost_is_not_someone_elses(lbrecon, fleet, daemons, store, proxy):
    daemon = run_daemon(lbrecon, daemons, store)
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot")
    daemon.stop()
    for name in ("web-2", "web-3"):
        fleet.delete_record("lb-state", name)
    # The transaction reaches the table; its answer is cut off, so lbrecon sends it again.
    proxy.fail("TransactWriteItems", "truncate", times=1)
    lbrecon.endpoint = proxy.endpoint
    result = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", listed(lbrecon)[-1]["id"], "--approve", "CHG-7")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote 2 record(s)" in result.stdout, result.stdout
    assert "someone else" not in result.stdout
    assert proxy.operations()[("dynamodb", "TransactWriteItems")] == 2
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    assert items["web-2"]["lbrecon_restored"]["M"]["ticket"]["S"] == "CHG-7"


def test_adopt_after_two_snapshots_leaves_lost_records_to_restore(lbrecon, fleet, daemons, store):
    daemon = run_daemon(lbrecon, daemons, store)
    wait_for(lambda: len(listed(lbrecon)) >= 1, what="a snapshot")
    first = listed(lbrecon)[-1]["id"]
    # The loss, then a snapshot of the table without the lost records: the newest no longer
    # holds them.
    fleet.delete_record("lb-state", "web-5")
    wait_for(lambda: len(listed(lbrecon)) >= 2, what="a snapshot of the loss")
    daemon.stop()
    # A load balancer no snapshot ever held is adopted.
    fleet.bare("new-0")

    result = lbrecon.run("adopt", "--target", "prod-use1", "--all", "--approve", "CHG-8")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"web-5: snapshot {first} holds its record: use `lbrecon restore" in result.stdout, result.stdout
    assert "wrote 1 record(s)" in result.stdout
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    assert "web-5" not in items
    assert "lbrecon_adopted" in items["new-0"]

    restored = lbrecon.run("restore", "--target", "prod-use1", "--snapshot", first, "--approve", "CHG-9")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    assert item_without_approval(items["web-5"])["config"]["M"]["name"]["S"] == "web-5"
    assert "lbrecon_adopted" not in items["web-5"]


def test_adopt_writes_a_gateway_load_balancer_with_its_listener(lbrecon, moto, tmp_path):
    from lbrecon_harness.faultproxy import FaultProxy

    fleet = Fleet(moto.endpoint)
    fleet.gwlb("gw-0")
    fleet.nlb("db-0")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    # Through AWS's answers: DescribeRules on a gateway listener is ListenerNotFound there.
    faithful = FaultProxy(moto.endpoint, faithful=True)
    try:
        lbrecon.endpoint = faithful.endpoint
        lbrecon.write_config(daemon_config(free_port(), snapshots=f'dir = "{tmp_path / "snaps"}"'))
        done = lbrecon.run("adopt", "--target", "prod-use1", "--all", "--approve", "CHG-11")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "wrote 2 record(s)" in done.stdout
        items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
        listeners = items["gw-0"]["config"]["M"]["listeners"]["L"]
        assert len(listeners) == 1
        actions = listeners[0]["M"]["default_actions"]["L"]
        assert actions[0]["M"]["target_group"]["S"] == "gw-0-geneve"
        code, report = lbrecon.check_json()
        assert code == 0, report
        assert report["targets"][0]["summary"]["in_sync"] == 2
    finally:
        faithful.stop()
