# Sourced by bench/discover.sh, bench/join.sh and bench/syscalls.sh, after
# they `cd` to the repository: the release build they measure, a scratch
# directory removed on exit, the loopback lab, and the populated root that
# join and reset start from.
# shellcheck shell=bash

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

# start_lab [ARG...]: `attach-node-lab serve` in the background with ARGs
# (--quiet: no request log), its request log in $work/requests.log; waits
# until it is ready and loads its settings (LAB_*).
# shellcheck disable=SC2120 # ARGs are optional
start_lab() {
    "$bin/attach-node-lab" serve --dir "$work/lab" --lifetime 900 "$@" \
        >"$work/ready" 2>"$work/requests.log" &
    lab_pid=$!
    for _ in $(seq 100); do grep -q ready "$work/ready" 2>/dev/null && break; sleep 0.1; done
    # shellcheck disable=SC1091
    . "$work/lab/lab.env"
}

# populated_root: the template $t (a VM's root with a few files of its own:
# a hostname, a containerd config, a site sysctl file), the root $r that
# each run starts from a fresh copy of, and the join and reset commands
# against the lab.
populated_root() {
    t="$work/template"
    mkdir -p "$t/etc/containerd" "$t/etc/sysctl.d" "$t/var/lib"
    echo bench-worker >"$t/etc/hostname"
    printf 'version = 2\n' >"$t/etc/containerd/config.toml"
    echo "vm.swappiness = 10" >"$t/etc/sysctl.d/10-site.conf"
    r="$work/root"
    # shellcheck disable=SC2034 # used by the scripts that source this
    join=("$bin/attach-node" join --control-plane "$LAB_CONTROL_PLANE"
        --control-plane-ca "$LAB_CONTROL_PLANE_CA"
        --openapi-token-file "$LAB_OPENAPI_TOKEN_FILE" --root "$r")
    # shellcheck disable=SC2034
    reset=("$bin/attach-node" reset --root "$r")
}
