#!/usr/bin/env bash
# Benchmark: `attach-node join --root` and `attach-node reset --root` against
# the loopback lab, whole process: wall time (hyperfine), peak RSS (GNU
# time), and the requests one join makes to each server (the lab's log).
# Each timed run starts from a fresh copy of a populated scratch root.
#
# Usage: bench/join.sh [RUNS]   (writes bench/results/join.{json,md})
# Needs: hyperfine, GNU time (apt-get install hyperfine time).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}

# shellcheck source=bench/lib.sh
. bench/lib.sh
start_lab
populated_root

# Requests a single join makes, by server.
rm -rf "$r" && cp -a "$t" "$r"
: >"$work/requests.log"
"${join[@]}" >/dev/null 2>&1
echo "requests per join:" | tee "$out/join-requests.txt"
awk '{print "  " $2}' "$work/requests.log" | sort | uniq -c | tee -a "$out/join-requests.txt"

hyperfine --shell=none --warmup 3 --runs "$runs" \
    --export-json "$out/join.json" --export-markdown "$out/join.md" \
    --prepare "sh -c 'rm -rf $r && cp -a $t $r'" -n "join --root" "${join[*]}" \
    --prepare "sh -c 'rm -rf $r && cp -a $t $r && ${join[*]} >/dev/null 2>&1'" -n "reset --root" "${reset[*]}"

rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1; }
echo
echo "peak RSS (KiB), median of 9:" | tee "$out/join-rss.txt"
for what in join reset; do
    vals=()
    for _ in $(seq 9); do
        rm -rf "$r" && cp -a "$t" "$r"
        if [ "$what" = reset ]; then "${join[@]}" >/dev/null 2>&1; vals+=("$(rss "${reset[@]}")"); else vals+=("$(rss "${join[@]}")"); fi
    done
    printf '%s\n' "${vals[@]}" | sort -n | sed -n 5p | sed "s/^/  $what: /"
done | tee -a "$out/join-rss.txt"
