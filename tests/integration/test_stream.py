"""The state table's stream against moto: a loss paused in seconds at a long interval, the
journal, restore to an instant between snapshots, history, and a stream that cannot be read."""

import datetime
import gzip
import json
import time

import pytest
from lbrecon_harness.config import daemon_config
from lbrecon_harness.faultproxy import ACCESS_DENIED
from lbrecon_harness.fleet import Fleet, add_web, control_item, create_state_table, table_items, wait_for
from lbrecon_harness.metrics import metric
from lbrecon_harness.moto_server import free_port

T = {"target": "prod-use1"}

GUARD = """
[guard]
min_missing = 1
max_missing_ratio = 0.05
confirm_cycles = 2
new_load_balancer_grace = "0s"

[[guard.pausers]]
type = "dynamodb_flag"
"""


@pytest.fixture
def fleet(moto):
    """Ten load balancers with their records, in a state table with a NEW_AND_OLD_IMAGES stream."""
    fleet = Fleet(moto.endpoint)
    for i in range(10):
        add_web(fleet, f"web-{i}")
    create_state_table(fleet.endpoint, fleet.region, "lb-state", stream=True)
    fleet.write_records("lb-state")
    return fleet


BUCKET = "lbrecon-journal"


class Journal:
    """The target's journal in a local or an S3 snapshot store."""

    def __init__(self, toml, files):
        self.toml = toml
        self.files = files

    def segments(self):
        return self.files()

    def events(self):
        """(name, event, version of the new image) of every record the journal holds."""
        seen = []
        for data in self.files():
            for record in json.loads(gzip.decompress(data))["records"]:
                image = record.get("new_image") or {}
                seen.append((record["keys"]["name"]["S"], record["event"], image.get("version", {}).get("N")))
        return seen

    def holds(self, *events):
        return set(events) <= set(self.events())


@pytest.fixture(params=["local", "s3"])
def journal(request, moto, tmp_path):
    if request.param == "local":
        directory = tmp_path / "snapshots"
        return Journal(f'dir = "{directory}"',
                       lambda: [p.read_bytes() for p in sorted((directory / "prod-use1" / "journal").glob("*.json.gz"))])
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)

    def files():
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="lbrecon/prod-use1/journal/").get("Contents", [])
        return [s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in sorted(listed, key=lambda o: o["Key"])]

    return Journal(f'dir = "{tmp_path / "unused"}"\n\n[snapshots.s3]\nbucket = "{BUCKET}"\nprefix = "lbrecon/"', files)


def local(tmp_path):
    directory = tmp_path / "snapshots"
    return Journal(f'dir = "{directory}"',
                   lambda: [p.read_bytes() for p in sorted((directory / "prod-use1" / "journal").glob("*.json.gz"))])


def tailing(daemon):
    """The tailer has read the stream once."""
    return metric(daemon.metrics()[0], "lbrecon_stream_lag_seconds", **T) is not None


def start(lbrecon, daemons, journal, interval="1s"):
    port = free_port()
    lbrecon.write_config(daemon_config(port, interval=interval, extra=GUARD, snapshots=journal.toml))
    result = lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-1")
    assert result.returncode == 0, result.stderr
    daemon = daemons.start(lbrecon, port)
    daemon.wait_ready()
    return daemon


def paused(fleet):
    item = control_item(fleet, "lb-state-control", "prod-use1")
    return bool(item and item.get("paused"))


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_mass_deletion_is_paused_in_seconds_at_a_long_interval(lbrecon, fleet, daemons, tmp_path):
    journal = local(tmp_path)
    daemon = start(lbrecon, daemons, journal, interval="120s")
    init = lbrecon.run("init", "--target", "prod-use1")
    assert "the state table lb-state has a stream (NEW_AND_OLD_IMAGES)" in init.stdout, init.stdout
    # The tailer is reading: the journal has begun.
    wait_for(lambda: tailing(daemon), timeout=20, what="the stream read")
    assert not paused(fleet)

    deleted_at = time.monotonic()
    for name in ("web-1", "web-4", "web-7"):
        fleet.delete_record("lb-state", name)
    # The next cycle is two minutes away: only the stream can pause this soon.
    wait_for(lambda: paused(fleet), timeout=20, what="the pause")
    elapsed = time.monotonic() - deleted_at
    item = control_item(fleet, "lb-state-control", "prod-use1")
    assert item["reason"].startswith("mass loss"), item
    assert elapsed < 60, elapsed
    text = daemon.metrics()[0]
    assert metric(text, "lbrecon_stream_records_total", **T, event="REMOVE") >= 3
    assert metric(text, "lbrecon_cycles_total", **T, outcome="complete") == 1
    # The removals are journaled verbatim, with the images they removed.
    wait_for(lambda: journal.holds(("web-1", "REMOVE", None), ("web-4", "REMOVE", None), ("web-7", "REMOVE", None)),
             timeout=30, what="the removals journaled")


@pytest.mark.parametrize("answers", ["moto", "aws-faithful"])
def test_restore_to_an_instant_between_snapshots_and_history(lbrecon, fleet, daemons, journal, moto, answers,
                                                             request):
    if answers == "aws-faithful":
        # Creation times to the second, as DynamoDB Streams gives them.
        from lbrecon_harness.faultproxy import FaultProxy

        proxy = FaultProxy(moto.endpoint, faithful=True)
        request.addfinalizer(proxy.stop)
        lbrecon.endpoint = proxy.endpoint
    daemon = start(lbrecon, daemons, journal)
    wait_for(lambda: tailing(daemon), timeout=20, what="the stream read")
    table = fleet.c["dynamodb_resource"].Table("lb-state")

    # Before T: web-2 changes, web-3 is deleted.
    second = fleet.item("web-2", version=2)
    assert second["config"].get("ip_address_type") != "dualstack"
    second["config"]["ip_address_type"] = "dualstack"
    table.put_item(Item=second)
    fleet.delete_record("lb-state", "web-3")
    time.sleep(1.5)  # creation times are to the second
    instant = now_rfc3339()
    time.sleep(1.5)
    # After T: web-2 changes again, web-5 is deleted, web-3 comes back newer.
    third = fleet.item("web-2", version=3)
    table.put_item(Item=third)
    fleet.delete_record("lb-state", "web-5")
    table.put_item(Item=fleet.item("web-3", version=4))
    wait_for(lambda: journal.holds(("web-2", "MODIFY", "3"), ("web-5", "REMOVE", None), ("web-3", "INSERT", "4")),
             timeout=40, what="the changes journaled")
    # Then web-2 is lost.
    fleet.delete_record("lb-state", "web-2")
    wait_for(lambda: journal.holds(("web-2", "REMOVE", None)), timeout=40, what="the loss journaled")
    # The recovery check found the last snapshot plus the journal equal to the scan.
    wait_for(lambda: metric(daemon.metrics()[0], "lbrecon_recovery_check_mismatches", **T) == 0, timeout=30,
             what="a recovery check")
    daemon.stop()

    dry = lbrecon.run("restore", "--target", "prod-use1", "--at", instant, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    done = lbrecon.run("restore", "--target", "prod-use1", "--at", instant, "--approve", "CHG-9")
    assert done.returncode == 0, done.stdout + done.stderr
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    # web-2 as it was at T (version 2, dual-stack), not its first or last version.
    assert items["web-2"]["version"]["N"] == "2", items["web-2"]
    assert items["web-2"]["config"]["M"]["ip_address_type"]["S"] == "dualstack"
    # web-5 existed at T: back. web-3's newer write stands.
    assert "web-5" in items
    assert items["web-3"]["version"]["N"] == "4"

    history = lbrecon.run("history", "--target", "prod-use1", "web-2", "--format", "json")
    assert history.returncode == 0, history.stdout + history.stderr
    versions = json.loads(history.stdout)["versions"]
    events = [v["event"] for v in versions]
    assert "REMOVE" in events and "MODIFY" in events, events
    numbers = [str(v["version"]) for v in versions if v.get("version") is not None]
    assert "2" in numbers and "3" in numbers, json.dumps(versions)[:2000]
    # The change to version 2 and back in version 3, as drift paths.
    by_version = {str(v["version"]): v for v in versions if v.get("version") is not None}
    assert [(c["path"], c["to"]) for c in by_version["2"]["changes"]] == [("/ip_address_type", "dualstack")], by_version["2"]
    assert [c["path"] for c in by_version["3"]["changes"]] == ["/ip_address_type"], by_version["3"]
    assert events[-1] == "REMOVE", events


def test_a_stream_that_cannot_be_read_trips_nothing_and_the_cycle_still_finds_the_loss(lbrecon, fleet, daemons, tmp_path, proxy):
    # Every stream call is refused: the daemon cannot read the stream at all.
    for operation in ("DescribeStream", "GetShardIterator", "GetRecords"):
        proxy.fail(operation, ACCESS_DENIED, times=10**6)
    lbrecon.endpoint = proxy.endpoint
    journal = local(tmp_path)
    daemon = start(lbrecon, daemons, journal, interval="2s")
    for name in ("web-1", "web-4", "web-7"):
        fleet.delete_record("lb-state", name)
    # A mass loss all the same, found by the cycle: the stream only costs speed.
    wait_for(lambda: paused(fleet), timeout=30, what="the pause by the cycle")
    assert control_item(fleet, "lb-state-control", "prod-use1")["reason"].startswith("mass loss")
    text = daemon.metrics()[0]
    assert metric(text, "lbrecon_stream_records_total", **T, event="REMOVE") in (None, 0)
    assert metric(text, "lbrecon_aws_requests_total", **T, service="dynamodb", operation="DescribeStream",
                  outcome="error") >= 1


LEASES = "lbrecon-leases"
ELECTION = f"""
[leader_election]
table = "{LEASES}"
lease = "4s"
"""


def test_a_new_leader_resumes_the_stream_from_the_checkpoint(lbrecon, fleet, daemons, tmp_path):
    """kill -9 of the leader while records are being written: the new leader reads on from the
    checkpoint; no record is journaled twice and none is skipped."""
    from types import SimpleNamespace

    journal = local(tmp_path)
    lbrecon.write_config(daemon_config(free_port(), extra=ELECTION + GUARD, snapshots=journal.toml))
    result = lbrecon.run("init", "--target", "prod-use1", "--approve", "CHG-1")
    assert result.returncode == 0, result.stderr
    replicas = []
    for name in ("a", "b"):
        port = free_port()
        config = tmp_path / f"{name}.toml"
        config.write_text(daemon_config(port, interval="1s", extra=ELECTION + GUARD, snapshots=journal.toml))
        runner = SimpleNamespace(binary=lbrecon.binary, config_path=config, tmp_path=tmp_path, endpoint=lbrecon.endpoint)
        replicas.append(daemons.start(runner, port, log_name=f"{name}.log"))

    def leader():
        for replica in replicas:
            if replica.process.poll() is None:
                try:
                    if metric(replica.metrics()[0], "lbrecon_leader", **T) == 1:
                        return replica
                except Exception:
                    pass
        return None

    first = wait_for(leader, timeout=30, what="a leader")
    wait_for(lambda: metric(first.metrics()[0], "lbrecon_stream_lag_seconds", **T) is not None, timeout=30,
             what="the leader reading the stream")
    table = fleet.c["dynamodb_resource"].Table("lb-state")
    written = []
    for version in range(2, 14):
        for name in ("web-0", "web-6"):
            table.put_item(Item=fleet.item(name, version=version))
            written.append((name, "MODIFY", str(version)))
        if version == 7:
            first.process.kill()
            first.process.wait(timeout=10)
        time.sleep(0.3)
    second = wait_for(leader, timeout=30, what="a new leader")
    assert second is not first
    wait_for(lambda: journal.holds(*written), timeout=60, what="every write journaled")
    events = journal.events()
    mine = [event for event in events if event in set(written)]
    assert sorted(mine) == sorted(written), "a write journaled twice"
    sequences = []
    for data in journal.segments():
        sequences.extend(record["sequence"] for record in json.loads(gzip.decompress(data))["records"])
    assert len(sequences) == len(set(sequences)), "a stream record journaled twice"


def test_a_gap_in_the_journal_is_named_and_refused_unless_allowed(lbrecon, fleet, daemons, tmp_path):
    """The stream is disabled and a new one enabled while lbrecon is down: the changes between
    are in no stream it can read. The journal records the gap; restore to an instant in it refuses
    unless --allow-gap, which restores the snapshot alone."""
    journal = local(tmp_path)
    daemon = start(lbrecon, daemons, journal)
    wait_for(lambda: tailing(daemon), timeout=20, what="the stream read")
    wait_for(lambda: journal.segments(), timeout=20, what="a sealed segment")
    daemon.stop()

    table = fleet.c["dynamodb_resource"].Table("lb-state")
    table.put_item(Item=fleet.item("web-2", version=2))
    time.sleep(1.5)
    inside = now_rfc3339()
    time.sleep(1.5)
    # Meanwhile the table's owner disabled the stream and enabled a new one: the checkpoint is
    # of a stream that is gone. (The emulator cannot enable a stream twice; the checkpoint is
    # made to name the old stream instead, which is what lbrecon then finds.)
    fleet.c["dynamodb"].update_item(
        TableName="lb-state-control",
        Key={"target": {"S": "prod-use1#stream"}},
        UpdateExpression="SET stream_arn = :old",
        ExpressionAttributeValues={":old": {"S": "arn:aws:dynamodb:us-east-1:123456789012:table/lb-state/stream/old"}},
    )

    daemon = start(lbrecon, daemons, journal)

    def gaps():
        return [gap for data in journal.segments() for gap in json.loads(gzip.decompress(data))["gaps"]]

    found = wait_for(gaps, timeout=30, what="the gap journaled")
    assert "stream changed" in found[0]["reason"], found
    daemon.stop()
    fleet.delete_record("lb-state", "web-2")

    refused = lbrecon.run("restore", "--target", "prod-use1", "--at", inside, "--dry-run")
    assert refused.returncode != 0, refused.stdout
    assert "--allow-gap" in refused.stdout + refused.stderr
    allowed = lbrecon.run("restore", "--target", "prod-use1", "--at", inside, "--allow-gap", "--approve", "CHG-2")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    # The snapshot alone: web-2 as the snapshot before the gap held it.
    items = {item["name"]["S"]: item for item in table_items(fleet, "lb-state")}
    assert items["web-2"]["version"]["N"] == "1"


def test_load_balancers_deleted_with_their_records_do_not_hide_a_loss_through_aws_answers(
        lbrecon, fleet, daemons, tmp_path, moto):
    """Through AWS's answers (the fault proxy's faithful mode), a confirmation by name that
    includes a load balancer deleted with its record fails whole, as on AWS: the live ones are
    still confirmed and the mass loss is paused at once; the decommissioned ones count for
    nothing."""
    from lbrecon_harness.faultproxy import FaultProxy

    proxy = FaultProxy(moto.endpoint, faithful=True)
    try:
        lbrecon.endpoint = proxy.endpoint
        journal = local(tmp_path)
        daemon = start(lbrecon, daemons, journal, interval="120s")
        wait_for(lambda: tailing(daemon), timeout=20, what="the stream read")
        # Two load balancers decommissioned with their records, and three records lost.
        for name in ("web-8", "web-9"):
            fleet.elb.delete_load_balancer(LoadBalancerArn=fleet.arns[name])
        for name in ("web-8", "web-1", "web-9", "web-4", "web-7"):
            fleet.delete_record("lb-state", name)
        wait_for(lambda: paused(fleet), timeout=20, what="the pause")
        item = control_item(fleet, "lb-state-control", "prod-use1")
        assert item["reason"].startswith("mass loss"), item
        assert sorted(m for m in item["missing"]) == ["web-1", "web-4", "web-7"], item["missing"]
        assert metric(daemon.metrics()[0], "lbrecon_cycles_total", **T, outcome="complete") == 1
    finally:
        proxy.stop()
