#!/usr/bin/env bash
# Interop with QuickFIX/C++ (Python binding `quickfix` 1.16.0), a FIX engine nobody here wrote.
#
# Sets up a Python venv with quickfix (the prebuilt wheel in ../shared/wheels when it fits this
# Python, else `pip install quickfix==1.16.0`, which compiles for several minutes), then runs
# the interop tests in tests/interop/main.rs with INTEROP_PYTHON pointing at that venv.
# Exits non-zero if setting up or any test fails.
#
#   INTEROP_VENV   where the venv lives (default: $CARGO_TARGET_DIR or ./target, /interop-venv)
#   PYTHON         the interpreter to build the venv from (default: python3)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=${INTEROP_VENV:-$TARGET_DIR/interop-venv}
PYTHON=${PYTHON:-python3}
WHEEL=$ROOT/../shared/wheels/quickfix-1.16.0-cp311-cp311-linux_x86_64.whl

say() { printf 'interop: %s\n' "$*"; }

has_quickfix() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import quickfix, quickfix44' 2>/dev/null
}

if has_quickfix; then
  say "using $VENV (quickfix already installed)"
else
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  py_tag=$("$VENV/bin/python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
  installed=no
  if [ -f "$WHEEL" ] && [ "$py_tag" = cp311 ] && [ "$(uname -m)" = x86_64 ]; then
    say "installing the prebuilt wheel $WHEEL"
    if "$VENV/bin/python" -m pip install --quiet "$WHEEL"; then
      installed=yes
    else
      say "the wheel did not install; falling back to PyPI"
    fi
  fi
  if [ "$installed" = no ]; then
    say "installing quickfix==1.16.0 from PyPI (compiles QuickFIX/C++: several minutes)"
    "$VENV/bin/python" -m pip install --quiet quickfix==1.16.0
  fi
  has_quickfix || { say "quickfix does not import in $VENV"; exit 1; }
fi

if [ ! -f "$VENV/share/quickfix/FIX44.xml" ]; then
  say "warning: $VENV/share/quickfix/FIX44.xml missing; peers will look in sys.prefix"
fi

say "running cargo test --test interop"
INTEROP_PYTHON="$VENV/bin/python" cargo test --quiet --test interop -- --test-threads=1
say "all interop tests passed"
