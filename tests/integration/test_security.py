"""Security properties: credentials never reach a log line, at any level."""

from lbrecon_harness.config import FAST_AWS, daemon_config, target_config
from lbrecon_harness.fleet import Fleet, create_state_table, wait_for
from lbrecon_harness.lbrecon import aws_env
from lbrecon_harness.moto_server import free_port

CANARY = "lbreconCanarySecret0123456789abcdefCANARY"


def test_a_secret_key_appears_in_no_log_line(lbrecon, moto, daemons):
    fleet = Fleet(moto.endpoint)
    fleet.alb("web-0")
    create_state_table(fleet.endpoint, fleet.region, "lb-state")
    fleet.write_records("lb-state")
    env = aws_env(moto.endpoint)
    env.update(AWS_SECRET_ACCESS_KEY=CANARY, AWS_SESSION_TOKEN=CANARY + "token", LBRECON_LOG="trace")
    lbrecon.write_config("[daemon]\ninterval = \"30s\"\n" + target_config() + FAST_AWS)
    for args in (("check",), ("check", "--format", "json"), ("status",), ("validate",)):
        result = lbrecon.run(*args, env=env)
        assert CANARY not in result.stdout + result.stderr, args
        assert len(result.stderr) > 0 or args == ("validate",), args

    port = free_port()
    lbrecon.write_config(daemon_config(port))
    daemon = daemons.start(lbrecon, port, env=env)
    daemon.wait_ready()
    wait_for(lambda: daemon.output().count("cycle complete") >= 2, what="two cycles at trace level")
    assert CANARY not in daemon.get("/metrics").text + daemon.get("/drift").text
    daemon.stop()
    output = daemon.output()
    assert "TRACE" in output or "DEBUG" in output
    assert CANARY not in output
