#!/usr/bin/env bash
# Benchmark: a fleet burst. AGENTS agents discover and join at once, each
# into its own scratch root, against the loopback lab, whose API server
# admits a fixed number of requests at a time (beyond it, 429 with
# Retry-After: 1, as kube-apiserver's max-in-flight filter). Side by side,
# each against a fresh lab with the same settings:
#   attach-node        real `attach-node join --root` processes (the release
#                      build), with their own retry policy;
#   kubeadm            SIMULATED: threads in one process making the same five
#                      requests, a failed one retried at kubeadm's fixed 5 s
#                      discovery interval (constants.DiscoveryRetryInterval);
#   kubeadm-client-go  SIMULATED: the same, under client-go's own retries
#                      (a 429 retried after its Retry-After, up to 10 times)
#                      before the 5 s poll sees an error.
# Two admission settings: "tight", 10 requests at a time held 50 ms each
# (200 API requests/s: the API server is the bottleneck), and "roomy", 50 at
# a time held 20 ms (2,500/s: the 2 cores are).
#
# Every agent is started first and held at a barrier (a real agent blocks
# reading its token from stdin, --openapi-token-file -), then all are
# released at once. The roots are on tmpfs (/dev/shm) when there is one: in
# a real fleet each VM has its own disk, and 1000 agents' fsyncs queued on
# this one disk would measure the disk (bench/join.sh and bench/syscalls.sh
# measure a join's own fsyncs). FLEET_SCRATCH=DIR puts them elsewhere.
#
# The simulated fleets' times vary from run to run (they retry in step), so
# each setting runs REPEAT rounds, every fleet once per round, and the table
# gives each figure's median with its range.
#
# Usage: bench/fleet.sh [AGENTS] [REPEAT]   (default 1000 3; writes
#        bench/results/fleet-{tight,roomy}.{md,json})
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-1000}
repeat=${2:-3}

cargo build --quiet --release --workspace --bins
bin=$PWD/target/x86_64-unknown-linux-gnu/release
out=bench/results
mkdir -p "$out"

# Descriptors: the harness holds one pipe per agent until the release, and
# the lab two per open connection (at most 512). Processes: one per agent,
# each with two or three threads.
need_fds=$((agents + 2048))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
    ulimit -n "$need_fds" 2>/dev/null || {
        echo "fleet.sh: needs ulimit -n >= $need_fds (now $(ulimit -n))" >&2
        exit 1
    }
fi
need_procs=$((agents * 4))
if [ "$(ulimit -u)" != unlimited ] && [ "$(ulimit -u)" -lt "$need_procs" ]; then
    echo "fleet.sh: needs ulimit -u >= $need_procs (now $(ulimit -u))" >&2
    exit 1
fi

scratch=${FLEET_SCRATCH:-/dev/shm}
if ! [ -d "$scratch" ] || ! [ -w "$scratch" ]; then scratch=${TMPDIR:-/tmp}; fi

status=0
for setting in "tight 10 50" "roomy 50 20"; do
    read -r name in_flight latency <<<"$setting"
    {
        echo "bench/fleet.sh $agents $repeat, $name: --api-max-in-flight $in_flight --api-latency-ms $latency"
        echo "$(date -u +%Y-%m-%dT%H:%MZ), $("$bin/attach-node" --version), roots in $scratch ($(findmnt -no FSTYPE -T "$scratch" 2>/dev/null | head -n 1))"
        echo "ulimit -n $(ulimit -n), ulimit -u $(ulimit -u); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo
    } >"$out/fleet-$name.md"
    "$bin/attach-node-fleet" burst --agents "$agents" --repeat "$repeat" \
        --api-max-in-flight "$in_flight" --api-latency-ms "$latency" \
        --attach-node "$bin/attach-node" --scratch "$scratch" \
        --json "$out/fleet-$name.json" >>"$out/fleet-$name.md" || status=1
    cat "$out/fleet-$name.md"
    echo
done
# attach-node-fleet fails when any agent did not join.
exit $status
