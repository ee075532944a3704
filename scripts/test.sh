#!/usr/bin/env bash
# Runs the whole test suite: unit tests, then integration tests against a local AWS emulator
# (the moto server) that the harness starts on a free loopback port. Installs what it needs.
# LBRECON_TEST_WORKERS=N runs the integration tests in N pytest-xdist workers, each with its own
# emulator and its own record of AWS calls (target/aws-operations.gwK.json); one by default.
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
python -m pytest tests/integration -q -p no:cacheprovider ${LBRECON_TEST_WORKERS:+-n "$LBRECON_TEST_WORKERS"} "$@"
if [ "$#" -eq 0 ]; then
    # Only a whole run has seen every call lbrecon makes.
    echo "== IAM policies against every call the suite saw"
    python tests/iam_exact.py target/aws-operations*.json
fi
