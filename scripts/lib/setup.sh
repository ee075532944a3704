# Shared set-up for scripts/test.sh and scripts/demo.sh: installs what they need, once.

# Python packages for the emulator and the tests, in a virtual environment at .venv.
setup_python() {
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    if ! python3 -m venv .venv; then
      echo "python3 -m venv failed: install your distribution's venv package (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  # lbrecon_harness must be this checkout's (editable, from ./harness): a .venv made before the
  # harness was a package, or copied from another checkout, gets it (re)installed.
  if ! .venv/bin/python -c 'import moto, boto3, pytest, xdist, requests, prometheus_client, cfnlint, yaml, lbrecon_harness.paths as p, pathlib, sys; sys.exit(p.ROOT != pathlib.Path.cwd().resolve())' 2>/dev/null; then
    echo "== installing Python packages (tests/requirements.txt)"
    .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}

# Debian packages: Prometheus and promtool (the alert-rule tests and the end-to-end alert test)
# and systemd-analyze (the unit checks).
setup_debian_packages() {
  local missing=()
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
