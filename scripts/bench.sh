#!/usr/bin/env bash
# Runs a benchmark against a local AWS emulator: ./scripts/bench.sh NAME [options] runs
# benches/NAME.py (restore, fleet, scale, stream).
# Builds lbrecon in release mode; installs what it needs. Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh
setup_python
name="${1:?usage: ./scripts/bench.sh restore|fleet|scale|stream [options]}"
shift
cargo build --release --locked --quiet
exec python "benches/$name.py" "$@"
