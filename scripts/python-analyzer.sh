#!/usr/bin/env bash
# The risk-analysis analyzer in Python (examples/risk-analysis/analyzer-py).
#
#   scripts/python-analyzer.sh [--listen 127.0.0.1:8081] [--stop-on-stdin-eof]
#   scripts/python-analyzer.sh --prepare      # only create/refresh the virtualenv, then exit
#
# Creates or refreshes a virtualenv (default target/analyzer-py-venv, or $ANALYZER_PY_VENV) with
# the pinned requirements.txt, running pip only when requirements.txt or the interpreter changed,
# then execs the app with the remaining arguments. The interpreter is $PYTHON (default python3,
# CPython >= 3.11); pip needs PyPI (or the index pip is configured for) the first time.
# Setup messages go to standard error; the app's log lines to standard output.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
app_dir="$root/examples/risk-analysis/analyzer-py"
requirements="$app_dir/requirements.txt"
venv="${ANALYZER_PY_VENV:-$root/target/analyzer-py-venv}"
python="${PYTHON:-python3}"

say() { echo "python-analyzer: $*" >&2; }
die() { say "$*"; exit 1; }

prepare_only=false
if [[ "${1:-}" == "--prepare" ]]; then
    prepare_only=true
    shift
fi

command -v "$python" >/dev/null 2>&1 || die "$python not found; install CPython 3.11 or newer (or set PYTHON)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$("$python" --version 2>&1) is too old; CPython 3.11 or newer is needed (set PYTHON)"

# What the virtualenv was built from: the requirements and the interpreter.
stamp_value="$("$python" -c '
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    data = f.read()
print(hashlib.sha256(data + f"\n{sys.executable} {sys.version}".encode()).hexdigest())
' "$requirements")"
stamp="$venv/.requirements.sha256"

# Debian's python3 ships without ensurepip: install python3-venv with apt when allowed
# (root, or sudo without a password).
install_venv_module() {
    command -v apt-get >/dev/null 2>&1 || return 1
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null 2>&1 || return 1
        sudo=(sudo -n)
    fi
    say "installing python3-venv with apt (no ensurepip for $python)"
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
    "${apt[@]}" install -y -qq python3-venv >/dev/null 2>&1 \
        || { "${apt[@]}" update -qq >/dev/null 2>&1 \
            && "${apt[@]}" install -y -qq python3-venv >/dev/null 2>&1; }
}

up_to_date() {
    [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_value" ]] \
        && "$venv/bin/python" -c '' >/dev/null 2>&1
}

if ! up_to_date; then
    mkdir -p "$(dirname "$venv")"
    # One setup at a time (tests may start several analyzers at once); released before exec.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$venv.lock"
        flock 9
    fi
    if ! up_to_date; then
        say "setting up $venv from $requirements (first run or requirements changed)"
        rm -rf "$venv"
        if "$python" -m venv "$venv" >/dev/null 2>&1; then
            pip=("$venv/bin/python" -m pip)
        elif rm -rf "$venv" && install_venv_module && "$python" -m venv "$venv" >/dev/null 2>&1; then
            pip=("$venv/bin/python" -m pip)
        else
            # No ensurepip (Debian without python3-venv): an empty venv, filled by the
            # interpreter's own pip (pip >= 22.3 understands --python).
            rm -rf "$venv"
            "$python" -m venv --without-pip "$venv" >&2 \
                || die "$python -m venv failed; install the venv module (e.g. apt-get install python3-venv)"
            "$python" -m pip --version >/dev/null 2>&1 \
                || die "neither ensurepip nor pip is available for $python"
            pip=("$python" -m pip --python "$venv/bin/python")
        fi
        "${pip[@]}" install --disable-pip-version-check --no-input --quiet \
            --requirement "$requirements" >&2 \
            || die "pip install -r $requirements failed"
        echo "$stamp_value" >"$stamp"
    fi
    if command -v flock >/dev/null 2>&1; then
        flock -u 9
        exec 9>&-
    fi
fi

if $prepare_only; then
    exit 0
fi
exec "$venv/bin/python" -u "$app_dir/app.py" "$@"
