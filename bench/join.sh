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

cargo build --quiet --release --workspace --bins
bin=$PWD/target/x86_64-unknown-linux-gnu/release
out=bench/results
mkdir -p "$out"

work=$(mktemp -d)
lab_pid=
cleanup() {
    if [ -n "$lab_pid" ]; then kill "$lab_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
"$bin/attach-node-lab" serve --dir "$work/lab" --lifetime 900 >"$work/ready" 2>"$work/requests.log" &
lab_pid=$!
for _ in $(seq 100); do grep -q ready "$work/ready" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/lab/lab.env"

# The template: a VM's root with a few files of its own.
t="$work/template"
mkdir -p "$t/etc/containerd" "$t/etc/sysctl.d" "$t/var/lib"
echo bench-worker >"$t/etc/hostname"
printf 'version = 2\n' >"$t/etc/containerd/config.toml"
echo "vm.swappiness = 10" >"$t/etc/sysctl.d/10-site.conf"
r="$work/root"

join=("$bin/attach-node" join --control-plane "$LAB_CONTROL_PLANE" --control-plane-ca "$LAB_CONTROL_PLANE_CA"
    --openapi-token-file "$LAB_OPENAPI_TOKEN_FILE" --root "$r")
reset=("$bin/attach-node" reset --root "$r")

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
