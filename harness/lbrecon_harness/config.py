"""Pieces of lbrecon configs the tests, the benchmarks and the demo write."""


def target_config(name="prod-use1", region="us-east-1", state_table="lb-state", control_table="lb-state-control"):
    return f"""
[[targets]]
name = "{name}"
region = "{region}"
state_table = "{state_table}"
control_table = "{control_table}"
"""


FAST_AWS = """
[aws]
elb_requests_per_second = 1000
elb_burst = 1000
dynamodb_requests_per_second = 1000
concurrency = 8
"""


def daemon_config(port, interval="1s", extra="", snapshots=None, cycle_deadline="20s"):
    """A daemon config on `port`. `snapshots` is the [snapshots] table's body; by default a
    fresh temporary directory. A throttled presence page is retried for most of
    `cycle_deadline`: a test that throttles one on purpose gives it a short one."""
    if snapshots is None:
        import tempfile

        snapshots = f'dir = "{tempfile.mkdtemp(prefix="lbrecon-snapshots-")}"'
    return f"""
[daemon]
interval = "{interval}"
jitter = 0.0
cycle_deadline = "{cycle_deadline}"

[http]
listen = "127.0.0.1:{port}"

[[targets]]
name = "prod-use1"
region = "us-east-1"
state_table = "lb-state"
control_table = "lb-state-control"

[snapshots]
{snapshots}

[aws]
elb_requests_per_second = 1000
elb_burst = 1000
dynamodb_requests_per_second = 1000
concurrency = 8
{extra}
"""
