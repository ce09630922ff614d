#!/usr/bin/env bash
# Install the test dependencies and run the whole test suite: `bash scripts/test.sh [pytest args]`.
# Creates .venv when missing, installs requirements-dev.txt into it, installs Debian's chromium for
# the browser test, postgresql for the store tests and nginx-light for the reverse-proxy test when
# they are missing and we may use apt (root), then runs ruff and pytest. The suite starts its own PostgreSQL server (tests/postgres.py);
# without one the PostgreSQL tests are skipped locally, and fail under CI (CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)  # the reverse proxy of deploy/nginx.conf (tests/test_proxy.py)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian ${missing[*]} for the browser and store tests..."
    apt-get update -qq >/dev/null
    # the package must not start a system-wide server (the suite starts its own): a policy-rc.d
    # that refuses service starts, unless the machine has one already
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
  else
    echo "note: missing ${missing[*]}; the browser test / PostgreSQL store tests will be skipped" \
      "(sudo apt-get install ${missing[*]})"
  fi
fi

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest "$@"
