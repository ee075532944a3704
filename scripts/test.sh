#!/usr/bin/env bash
# Runs the whole test suite: unit tests, then integration tests against a local AWS emulator
# (the moto server) that the harness starts on a free loopback port. Installs what it needs.
# The integration tests run in LBRECON_TEST_WORKERS pytest-xdist workers (2 by default; 1 runs
# them in one process), each with its own emulator and its own record of AWS calls
# (target/aws-operations.gwK.json), which tests/iam_exact.py takes together.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh

setup_python
setup_debian_packages

echo "== build"
cargo build --locked --all-targets
echo "== unit tests"
cargo test --locked
echo "== integration tests"
rm -f target/aws-operations.json target/aws-operations.*.json
workers="${LBRECON_TEST_WORKERS:-2}"
if [ "$workers" -gt 1 ]; then
    python -m pytest tests/integration -q -p no:cacheprovider -n "$workers" "$@"
else
    python -m pytest tests/integration -q -p no:cacheprovider "$@"
fi
if [ "$#" -eq 0 ]; then
    # Only a whole run has seen every call lbrecon makes.
    echo "== IAM policies against every call the suite saw"
    python tests/iam_exact.py target/aws-operations*.json
fi
