#!/usr/bin/env bash
# Fuzzes runner's input parsers with libFuzzer (cargo fuzz): the config loader, path templates,
# cron expressions, each decoder, and the console's query string with its CEL filters. Each
# target starts from its seed corpus (fuzz/seeds/<target>) and runs for FUZZ_SECONDS (default
# 60). A crash leaves its input in fuzz/artifacts/<target>/ and fails the script; turn it into
# a regression test named after what it caught. Not part of tests/run.sh: it rebuilds runner
# with coverage instrumentation (about 15 minutes the first time).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-config_files path_template cron decode browse_query}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# The machine's toolchain is stable; cargo fuzz passes flags that need nightly's permission.
export RUSTC_BOOTSTRAP=1

cargo fuzz build --sanitizer none
failed=()
printf '%-14s %10s %10s %s\n' target seconds runs outcome
for target in $targets; do
  mkdir -p "corpus/$target"
  cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
  log="$(mktemp)"
  if cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    outcome=ok
  else
    outcome="CRASH (see fuzz/artifacts/$target/)"
    failed+=("$target")
    tail -40 "$log"
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  printf '%-14s %10s %10s %s\n' "$target" "$seconds" "$runs" "$outcome"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]}"
  exit 1
fi
