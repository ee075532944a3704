#!/usr/bin/env bash
# The lbrecon demo: starts a local AWS emulator (the moto server) on a free loopback port,
# builds a sample fleet and its records, runs lbrecon against it, then changes the fleet and
# shows the drift. Installs what it needs; stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh

setup_python
echo "== building lbrecon"
cargo build --locked --quiet
exec python scripts/demo.py "$@"
