#!/usr/bin/env bash
# Every benchmark behind BENCHMARKS.md, in one run on one release build:
# discover vs curl, join and reset (wall time, peak RSS), their syscalls,
# bytes written and fsyncs, and the fleet burst. Writes bench/results/ and
# bench/results/machine.txt (date, machine, versions, load before and after).
# The e2e stage times ("kubelet started", "Node registered") come from
# `ATTACH_NODE_E2E=require cargo test --test e2e live_join -- --nocapture`,
# which needs root and a booted machine; it is not run here.
#
# Usage: bench/all.sh   (takes about 20 minutes on 2 cores; BENCH_REV names
# the source when this is not a git checkout, e.g. a `git archive` export)
# Needs: hyperfine, GNU time, curl, strace.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --release --workspace --bins
bin=$PWD/target/x86_64-unknown-linux-gnu/release
out=bench/results
mkdir -p "$out"

first() { "$@" 2>&1 | head -n 1; }
{
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    # shellcheck disable=SC1091
    echo "machine: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "attach-node: $("$bin/attach-node" --version), built from git ${BENCH_REV:-$(git describe --always --dirty 2>/dev/null || echo "?")}, $(stat -c %s "$bin/attach-node") bytes"
    echo "tools: $(first hyperfine --version), $(first curl --version | cut -d' ' -f1-2), $(first strace --version), GNU time $(dpkg-query -W -f '${Version}' time 2>/dev/null || echo '?')"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

bench/discover.sh 50
bench/join.sh 30
bench/syscalls.sh 5
bench/fleet.sh 1000 3

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
cat "$out/machine.txt"
