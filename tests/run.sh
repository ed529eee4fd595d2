#!/usr/bin/env bash
# The test command (README.md, "Test it"): everything from a fresh machine.
# Sets up what the tests need, builds every crate and plugin library, checks format
# and lints, and runs all tests with CEILO_REQUIRE_SERVICES=1 so that a test whose
# service is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

export CEILO_REQUIRE_SERVICES=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustc --version
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path examples/third-party-plugin/Cargo.toml -- --check

step "lints"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build (host, plugins, test fixtures)"
cargo build --workspace --quiet

step "tests"
cargo test --workspace --no-fail-fast
