#!/usr/bin/env bash
# Runs every test. Installs what the tests need when it is missing: the C toolchain pieces
# librdkafka builds with, tansu (a Kafka-compatible broker the tests start as a process) and
# Azurite (Azure Storage's emulator, from npm), DuckDB and pyarrow (from PyPI), which a test
# uses to read the output back as users do, kubernetes-validate (PyPI), which checks the
# Kubernetes manifests offline, Debian's chromium and chromium-driver for the console's browser
# test, promtool (Debian's prometheus package), which checks /metrics, and iproute2 (ip, tc),
# with which tests/network.rs puts tansu in a network namespace and slows or cuts its link,
# socat, the TLS front of tansu in tests/security.rs, and Debian's kcat, the bare consumer the
# pipeline benchmark's smoke run holds runner against.
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
AZURITE_VERSION=3.35.0

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v make >/dev/null || need_apt+=(make)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
command -v perl >/dev/null || need_apt+=(perl)
command -v npm >/dev/null || need_apt+=(nodejs npm)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v tc >/dev/null || need_apt+=(iproute2)
command -v socat >/dev/null || need_apt+=(socat)
command -v kcat >/dev/null || need_apt+=(kcat)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# tansu builds in the background while the tests build: each build has serial stretches
# (single crates, linking) that leave a core idle for the other.
tansu_bin="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"
tansu_pid=""
tansu_log="$(mktemp)"
if ! [ -x "$tansu_bin" ] || [ "$("$tansu_bin" --version 2>/dev/null)" != "tansu $TANSU_VERSION" ]; then
  echo "installing tansu $TANSU_VERSION in the background (a one-time build of about 10-20 minutes)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features libsql >"$tansu_log" 2>&1 &
  tansu_pid=$!
  tansu_bin="$HOME/.cargo/bin/tansu"
fi
export TANSU_BIN="$tansu_bin"

azurite_bin="$(npm prefix -g)/bin/azurite-blob"
if ! [ -x "$azurite_bin" ] || [ "$("$azurite_bin" --version 2>/dev/null)" != "$AZURITE_VERSION" ]; then
  echo "installing Azurite $AZURITE_VERSION from npm"
  npm install -g --no-audit --no-fund "azurite@$AZURITE_VERSION"
fi
export AZURITE_BIN="$azurite_bin"

if ! python3 -c "import kubernetes_validate" 2>/dev/null; then
  echo "installing kubernetes-validate from PyPI"
  python3 -m pip install --quiet kubernetes-validate==1.37.0 \
    || python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0
fi

if ! python3 -c "import duckdb, pyarrow" 2>/dev/null; then
  echo "installing duckdb and pyarrow from PyPI"
  python3 -m pip install --quiet duckdb==2.0.0 pyarrow==26.0.1 \
    || python3 -m pip install --quiet --break-system-packages duckdb==2.0.0 pyarrow==26.0.1
fi

cargo test --all-targets --features failpoints --no-run
# The example binaries themselves (cargo test builds examples as test harnesses only); a test
# runs examples/custom_processor.rs.
cargo build --examples --features failpoints
if [ -n "$tansu_pid" ]; then
  if ! wait "$tansu_pid"; then
    cat "$tansu_log"
    echo "installing tansu failed; run: cargo install tansu --version $TANSU_VERSION --locked --features libsql"
    exit 1
  fi
  echo "tansu $TANSU_VERSION installed"
fi

cargo test --all-targets --features failpoints -- --test-threads 2
# The pipeline benchmark end to end at a smoke size (this build, one run a format): its broker
# process, kcat and runner, each run checked to have read or written every record; the same
# build again as the baseline, so the comparison tables are made too. Its figures come from
# `cargo bench --bench pipeline` (docs/performance.md).
PIPELINE_RECORDS=2000 PIPELINE_RUNS=1 PIPELINE_BASELINE="${CARGO_TARGET_DIR:-$PWD/target}/debug/runner" \
  cargo test --features failpoints --bench pipeline -- --bench
