#!/usr/bin/env bash
# The crash campaign (issue 16). First each named crash point (src/crash.rs) of export,
# aggregate and continuous jobs: a run stopped there, then a rerun, every file read back. Then,
# for each scenario, CAMPAIGN_KILLS (default 100) `runner once` processes are killed with
# SIGKILL at random moments while new records keep arriving, then one run goes to the end and
# every file is read back: every offset exactly once. Prints the tables (scenario, faults,
# records checked, lost, duplicated, outcome). CAMPAIGN_SEED replays a campaign. The regular
# suite (tests/run.sh) runs the same tests with 10 kills per scenario and without the two
# continuous crash points whose claims take 90 s each to expire. Last, the store faults (a
# fault-injecting proxy before Azurite) and the bad-input corpus print their tables.
set -euo pipefail
cd "$(dirname "$0")/.."
export CAMPAIGN_KILLS="${CAMPAIGN_KILLS:-100}"
echo "runner $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%Y-%m-%d)"
filter='seed [0-9]|^\||^test result|^thread|^  left|^  right|panicked'
cargo test --release --features failpoints --test continuous a_member_stopped_at_each_crash_point \
  -- --nocapture 2>&1 | grep -E "$filter"
cargo test --release --features failpoints --test campaign -- --nocapture --test-threads 1 2>&1 \
  | grep -E "$filter"
cargo test --release --features failpoints --test store_faults store_faults_end -- --nocapture 2>&1 \
  | grep -E "$filter"
cargo test --release --features failpoints --test bad_input -- --nocapture --test-threads 1 2>&1 \
  | grep -E "$filter"
