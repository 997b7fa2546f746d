#!/usr/bin/env bash
# Benchmark: what `attach-node join --root` and `attach-node reset --root`
# ask of the kernel, against the loopback lab, each from a fresh copy of the
# same populated root as bench/join.sh:
#   - system calls, all threads (`strace -f -c`): the total and the top ones;
#   - fsync/fdatasync calls, and on what (files or directories);
#   - bytes handed to write(2)-family calls, by target (`strace -f -yy`):
#     host files under the root, attach-node's own state (journal, backups),
#     sockets (TLS records), stdout/stderr;
#   - pages dirtied in the page cache (GNU time %O, the kernel's write_bytes
#     in 512-byte units: what the process caused to be sent to storage).
# Counts vary a little from run to run (epoll_wait, futex, read depend on
# timing); each figure is the median of RUNS with its min and max.
#
# Usage: bench/syscalls.sh [RUNS]   (writes bench/results/syscalls.txt)
# Needs: strace, GNU time (apt-get install strace time).
# No secret is printed: strace -c prints no data, and the write trace is
# taken with -s 0 (no buffer contents) into a temporary file that is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

# shellcheck source=bench/lib.sh
. bench/lib.sh
start_lab --quiet
populated_root

fresh() { rm -rf "$r" && cp -a "$t" "$r"; }
# Runs "$what" (join or reset) from its starting state under "$@" (a wrapper).
run_one() {
    local what=$1
    shift
    fresh
    if [ "$what" = reset ]; then "${join[@]}" >/dev/null 2>&1; fi
    local cmd
    if [ "$what" = join ]; then cmd=("${join[@]}"); else cmd=("${reset[@]}"); fi
    "$@" "${cmd[@]}" >/dev/null 2>"$work/stderr" || {
        echo "$what failed:" >&2
        cat "$work/stderr" >&2
        exit 1
    }
}

# "calls name" per line from a strace -c summary, and "total N".
summary() {
    awk '$1 ~ /^[0-9.]+$/ && NF >= 5 {
        if ($NF == "total") print "total", $4; else print $4, $NF
    }' "$1"
}
median() { sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }
minmax() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo " … " hi}'; }

{
    echo "# bench/syscalls.sh $runs ($(date -u +%Y-%m-%dT%H:%MZ), $("$bin/attach-node" --version))"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/syscalls.txt"

for what in join reset; do
    # 1. strace -f -c, RUNS times.
    for i in $(seq "$runs"); do
        run_one "$what" strace -f -c -o "$work/c-$what-$i.txt"
        summary "$work/c-$what-$i.txt" >"$work/s-$what-$i.txt"
    done
    for i in $(seq "$runs"); do awk '$1 == "total" {print $2}' "$work/s-$what-$i.txt"; done >"$work/totals-$what"
    med=$(median <"$work/totals-$what")
    # The run whose total is the median gives the per-call table.
    pick=1
    for i in $(seq "$runs"); do
        if [ "$(awk '$1 == "total" {print $2}' "$work/s-$what-$i.txt")" = "$med" ]; then pick=$i; break; fi
    done
    syncs() { awk '$2 == "fsync" || $2 == "fdatasync" {n += $1} END {print n + 0}' "$1"; }
    for i in $(seq "$runs"); do syncs "$work/s-$what-$i.txt"; done >"$work/syncs-$what"

    # 2. One traced run for bytes by target and what each fsync was on.
    run_one "$what" strace -f -yy -s 0 -qq -o "$work/w-$what.txt" \
        -e trace=write,writev,pwrite64,pwritev,pwritev2,sendto,sendmsg,sendfile,copy_file_range,fsync,fdatasync,sync_file_range,syncfs
    # Each line: "PID call(FD<TARGET>, ...) = RET". The target is cut at
    # its first '<' or '>' ("1</dev/null<char 1:3>>" is /dev/null).
    awk -v root="$r" '
        {
            if (!match($0, /^[0-9]+ +[a-z0-9_]+\(/)) next
            head = substr($0, RSTART, RLENGTH - 1); sub(/^[0-9]+ +/, "", head)
            rest = substr($0, RSTART + RLENGTH)
            if (!match(rest, /^[0-9]+</)) next
            target = substr(rest, RLENGTH + 1)
            sub(/[<>].*/, "", target)
            if (!match($0, /= -?[0-9]+$/)) next
            ret = substr($0, RSTART + 2) + 0
            if (head ~ /sync/) { print "sync", target; next }
            if (ret <= 0) next
            if (target ~ /^(TCP|UDP|TCPv6|UDPv6|UNIX):/) class = "sockets"
            else if (index(target, root "/var/lib/attach-node/") == 1) class = "state"
            else if (index(target, root "/") == 1) class = "host"
            else if (target ~ /^anon_inode:/) class = "internal"
            else class = "output"
            bytes[class] += ret; calls[class]++
        }
        END { for (c in bytes) print "bytes", c, bytes[c], calls[c] }
    ' "$work/w-$what.txt" >"$work/b-$what.txt"
    dirs=0 files=0
    while read -r _ path; do
        if [ -d "$path" ]; then dirs=$((dirs + 1)); else files=$((files + 1)); fi
    done < <(grep '^sync ' "$work/b-$what.txt")
    b() { awk -v c="$1" '$1 == "bytes" && $2 == c {print $3 " B in " $4 " calls"; f = 1} END {if (!f) print "0 B"}' "$work/b-$what.txt"; }

    # 3. Pages dirtied: GNU time %O (512-byte blocks), RUNS times, no strace.
    for i in $(seq "$runs"); do
        run_one "$what" /usr/bin/time -o "$work/time" -f '%O'
        tail -n 1 "$work/time"
    done >"$work/oblocks-$what"

    {
        echo
        echo "== $what --root"
        echo "syscalls (strace -f -c), total: median $med, min … max $(minmax <"$work/totals-$what")"
        echo "fsync + fdatasync calls: median $(median <"$work/syncs-$what") ($(minmax <"$work/syncs-$what")); in the traced run: $files on files, $dirs on directories"
        echo "top syscalls (the median run):"
        grep -v '^total' "$work/s-$what-$pick.txt" | sort -rn | head -n 12 | awk '{printf "  %6d %s\n", $1, $2}'
        echo "bytes handed to write(2) and friends (the traced run):"
        echo "  host files under the root:             $(b host)"
        echo "  attach-node state (journal, backups):  $(b state)"
        echo "  sockets (TLS records, both servers):   $(b sockets)"
        echo "  stdout + stderr:                       $(b output)"
        echo "  eventfd wakeups (HTTP runtime):        $(b internal)"
        om=$(median <"$work/oblocks-$what")
        echo "pages dirtied (GNU time %O x 512): median $((om * 512)) B ($om blocks; min … max $(minmax <"$work/oblocks-$what") blocks)"
    } >>"$out/syscalls.txt"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/syscalls.txt"
cat "$out/syscalls.txt"
