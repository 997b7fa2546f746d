#!/usr/bin/env bash
# The main job on the built-in default: start the loopback lab (a control
# plane and a Kubernetes API server on 127.0.0.1, with fresh certificates),
# then run attach-node against it exactly as against a real cluster.
set -euo pipefail
cd "$(dirname "$0")"

echo "==> building (first run takes a few minutes)"
cargo build --quiet --workspace --bins
bin=target/x86_64-unknown-linux-gnu/debug

work=$(mktemp -d)
lab_pid=
cleanup() {
    if [ -n "$lab_pid" ]; then
        kill "$lab_pid" 2>/dev/null || true
        wait "$lab_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "==> starting the loopback lab"
"$bin/attach-node-lab" serve --dir "$work/lab" --lifetime 300 >"$work/lab.out" 2>"$work/lab.err" &
lab_pid=$!
for _ in $(seq 100); do
    grep -q '^ready' "$work/lab.out" 2>/dev/null && break
    kill -0 "$lab_pid" 2>/dev/null || { cat "$work/lab.err" >&2; exit 1; }
    sleep 0.1
done
grep -q '^ready' "$work/lab.out" || { echo "the lab did not start" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/lab/lab.env"
echo "    control plane $LAB_CONTROL_PLANE, API server $LAB_API_SERVER"


# A scratch root standing in for a VM's /, with a few files of its own,
# among them a containerd config that join must back up and reset restore.
root="$work/root"
mkdir -p "$root/etc/containerd" "$root/etc/sysctl.d" "$root/var/lib"
echo "demo-worker" >"$root/etc/hostname"
printf '# the image'"'"'s own containerd config\nversion = 2\n' >"$root/etc/containerd/config.toml"
echo "vm.swappiness = 10" >"$root/etc/sysctl.d/10-site.conf"
# A fingerprint of the root: every path with its type, mode and content hash.
fingerprint() {
    (cd "$1" && find . -path ./var/lib/attach-node -prune -o -printf '%p %y %m %l\n' | sort &&
        find . -path ./var/lib/attach-node -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum) | sha256sum | cut -c1-16
}
before=$(fingerprint "$root")

show() { printf '\n$ %s\n' "$*" | sed "s|$work|\$DEMO|g"; "$@"; }
an() { show "$bin/attach-node" "$@"; }
cp_args=(--control-plane "$LAB_CONTROL_PLANE" --control-plane-ca "$LAB_DIR/control-plane-ca.pem"
    --openapi-token-file "$LAB_DIR/openapi-token")

echo
echo "==> 1. discover: trade the openapi token for join information and verify the cluster CA"
an discover "${cp_args[@]}"

echo
echo "==> 2. the plan: every file with its mode and a diff, every action; nothing is written"
an join "${cp_args[@]}" --root "$root" --dry-run 2>/dev/null | sed -n '1,12p;/update/,/^  create    \/etc\/sysctl/p;/^actions/,$p'

echo
echo "==> 3. join into the scratch root"
an join "${cp_args[@]}" --root "$root"

echo
echo "==> 4. status"
an status --root "$root"

echo
echo "==> 5. the same join again: nothing changes"
an join "${cp_args[@]}" --root "$root"

echo
echo "==> 6. reset: the journal replayed backwards"
an reset --root "$root"

after=$(fingerprint "$root")
echo
echo "==> 7. the proof: the root before the join and after the reset"
echo "    before join  $before"
echo "    after reset  $after"
if [ "$before" = "$after" ]; then
    echo "    identical: every file, mode and byte is as it was"
else
    echo "    DIFFERENT: reset did not restore the root" >&2
    exit 1
fi
