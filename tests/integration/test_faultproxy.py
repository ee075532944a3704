"""The fault proxy's AWS-faithful mode, asked directly with boto3: each rewrite of moto's
answers it claims (README, "Development") does what it says, so tests run through it are held
to AWS's answers."""

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from lbrecon_harness.faultproxy import FaultProxy
from lbrecon_harness.fleet import Fleet, clients


@pytest.fixture
def faithful(moto):
    server = FaultProxy(moto.endpoint, faithful=True)
    fleet = Fleet(moto.endpoint)
    fleet.alb("web-0")
    fleet.alb("web-1")
    fleet.nlb("db-0")
    fleet.gwlb("gw-0")
    yield fleet, clients(server.endpoint, fleet.region)["elbv2"]
    server.stop()


def error_of(call):
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]


def test_arns_name_each_load_balancer_type_as_aws_does(faithful):
    fleet, elb = faithful
    arns = {lb["LoadBalancerName"]: lb["LoadBalancerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"]}
    assert ":loadbalancer/app/web-0/" in arns["web-0"]
    assert ":loadbalancer/net/db-0/" in arns["db-0"]
    assert ":loadbalancer/gwy/gw-0/" in arns["gw-0"]
    # An ARN in AWS's form is understood when sent back.
    listeners = elb.describe_listeners(LoadBalancerArn=arns["db-0"])["Listeners"]
    assert ":listener/net/db-0/" in listeners[0]["ListenerArn"]


def test_listeners_as_aws_gives_them_and_gateway_listeners_have_no_rules(faithful):
    fleet, elb = faithful
    web = elb.describe_listeners(LoadBalancerArn=fleet.arns["web-0"])["Listeners"]
    policies = {listener["Protocol"]: listener.get("SslPolicy") for listener in web}
    assert policies["HTTPS"] and policies["HTTP"] is None
    gateway = elb.describe_listeners(LoadBalancerArn=fleet.arns["gw-0"])["Listeners"][0]
    assert "Protocol" not in gateway and "SslPolicy" not in gateway
    error = error_of(lambda: elb.describe_rules(ListenerArn=gateway["ListenerArn"]))
    assert error["Code"] == "ListenerNotFound"


def test_page_size_is_honoured(faithful):
    fleet, elb = faithful
    pages, marker = [], None
    while True:
        kwargs = {"PageSize": 2, **({"Marker": marker} if marker else {})}
        page = elb.describe_target_groups(**kwargs)
        pages.append(len(page["TargetGroups"]))
        marker = page.get("NextMarker")
        if not marker:
            break
    # Two application load balancers of two groups each, one network, one gateway: six.
    assert pages == [2, 2, 2]


def test_a_gone_arn_fails_the_whole_tag_call(faithful):
    fleet, elb = faithful
    arns = [fleet.arns["web-0"], fleet.arns["web-1"], fleet.target_group_arns["web-0-api"]]
    assert len(elb.describe_tags(ResourceArns=arns)["TagDescriptions"]) == 3
    fleet.elb.delete_load_balancer(LoadBalancerArn=fleet.arns["web-1"])
    error = error_of(lambda: elb.describe_tags(ResourceArns=arns))
    assert error["Code"] == "LoadBalancerNotFound"
    assert fleet.arns["web-1"] in error["Message"]
    # The group is used by the HTTPS listener's rules only; they go with the listener.
    fleet.elb.delete_listener(ListenerArn=fleet.listener_arn("web-0", 443))
    fleet.elb.delete_target_group(TargetGroupArn=fleet.target_group_arns["web-0-api"])
    error = error_of(lambda: elb.describe_tags(ResourceArns=arns[:1] + arns[2:]))
    assert error["Code"] == "TargetGroupNotFound"


def test_a_gone_name_fails_the_whole_describe_by_name(faithful):
    fleet, elb = faithful
    names = ["web-0", "web-1"]
    assert len(elb.describe_load_balancers(Names=names)["LoadBalancers"]) == 2
    fleet.elb.delete_load_balancer(LoadBalancerArn=fleet.arns["web-1"])
    error = error_of(lambda: elb.describe_load_balancers(Names=names))
    assert error["Code"] == "LoadBalancerNotFound"
    assert "web-1" in error["Message"]
    assert len(elb.describe_load_balancers(Names=["web-0"])["LoadBalancers"]) == 1


def test_stream_records_are_timed_to_the_second(moto):
    from lbrecon_harness.fleet import create_state_table

    server = FaultProxy(moto.endpoint, faithful=True)
    try:
        create_state_table(moto.endpoint, "us-east-1", "t")
        direct = clients(moto.endpoint, "us-east-1")["dynamodb"]
        arn = direct.update_table(
            TableName="t", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]["LatestStreamArn"]
        direct.put_item(TableName="t", Item={"name": {"S": "web-0"}})
        kw = dict(endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        streams = boto3.client("dynamodbstreams", **kw)
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        record = streams.get_records(ShardIterator=iterator)["Records"][0]
        created = record["dynamodb"]["ApproximateCreationDateTime"]
        assert created.microsecond == 0, created
    finally:
        server.stop()


def test_throttles_have_aws_shapes(moto):
    server = FaultProxy(moto.endpoint, faithful=True)
    try:
        server.fail("DescribeLoadBalancers", "throttle", times=10)
        server.fail("ListTables", "throttle", times=10)
        # One attempt: the throttle as answered, not boto3's retries of it.
        kw = dict(endpoint_url=server.endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing",
                  config=Config(retries={"max_attempts": 1, "mode": "standard"}))
        error = error_of(lambda: boto3.client("elbv2", **kw).describe_load_balancers())
        assert (error["Code"], error["Message"], error["Type"]) == ("Throttling", "Rate exceeded", "Sender")
        error = error_of(lambda: boto3.client("dynamodb", **kw).list_tables())
        assert error["Code"] == "ThrottlingException"
    finally:
        server.stop()
