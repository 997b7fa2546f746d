#!/usr/bin/env bash
# CI smoke of the fuzz targets: builds them all, then runs each for a short,
# bounded time over its committed corpus (fuzz/corpus/<target>/). Exits
# non-zero on the first crash or failed check; libFuzzer then prints the
# input and cargo-fuzz saves it under fuzz/artifacts/<target>/.
#
# FUZZ_SMOKE_SECS (default 15) is each target's time. New inputs go to a
# scratch directory, so the committed corpora stay as they are.
#
# Stable Rust: no address sanitizer (its runtime needs nightly), which for
# this safe-Rust code loses little; see fuzz/RUNS.md.
set -euo pipefail

cd "$(dirname "$0")/.."
secs=${FUZZ_SMOKE_SECS:-15}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo fuzz build -O --sanitizer none

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT INT TERM

for target in $(cargo fuzz list); do
    echo "== fuzz smoke: $target (${secs}s)"
    mkdir "$scratch/$target"
    log="$scratch/$target.log"
    if ! cargo fuzz run -O --sanitizer none "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 80 "$log" >&2
        echo "fuzz smoke: $target failed; the input is under fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^stat::number_of_executed_units' "$log" || true
done
echo "fuzz smoke: all targets ran clean"
