#!/usr/bin/env bash
# The whole test suite: starts the local servers (scripts/services.sh), then runs every unit,
# integration and doc test of the workspace with all features.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo test --workspace --all-features "$@"
