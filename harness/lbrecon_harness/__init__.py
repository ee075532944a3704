"""lbrecon's test harness, shared by the integration tests (tests/integration), the benchmarks
(benches/) and the demo (scripts/demo.py):

- `paths`: the checkout's root (`ROOT`), where the binary and target/ are found;
- `moto_server`: a moto server on a free loopback port (`Moto`, `free_port`);
- `faultproxy`: the recording, fault-injecting and AWS-faithful proxy in front of it;
- `synthetic_elb`: a generated ELBv2 endpoint for fleets too large for the emulator;
- `fleet`: load-balancer fleets built in the emulator, with their records;
- `lbrecon`: the binary, its environment, commands (`Lbrecon`) and daemons (`Daemon`);
- `config`: config snippets (`target_config`, `daemon_config`, `FAST_AWS`);
- `metrics`: reading a Prometheus page;
- `operations`: the file of AWS calls the suite saw, for tests/iam_exact.py.

Installed in editable mode (`pip install -e ./harness`, through tests/requirements.txt), so
`ROOT` is the checkout it was installed from.
"""
