#!/usr/bin/env bash
# The crash campaign (issue 16): for each scenario, CAMPAIGN_KILLS (default 100) `runner once`
# processes are killed with SIGKILL at random moments while new records keep arriving, then
# one run goes to the end and every file is read back: every offset exactly once. Prints the
# table (scenario, kills, records checked, lost, duplicated, outcome). CAMPAIGN_SEED replays a
# campaign. The regular suite (tests/run.sh) runs the same test with 10 kills per scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
export CAMPAIGN_KILLS="${CAMPAIGN_KILLS:-100}"
echo "runner $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%Y-%m-%d)"
cargo test --release --test campaign -- --nocapture --test-threads 1 2>&1 \
  | grep -E 'seed [0-9]|^\||^test result|^thread|^  left|^  right'
