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
    [ -n "$lab_pid" ] && kill "$lab_pid" 2>/dev/null && wait "$lab_pid" 2>/dev/null
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

show() { printf '\n$ %s\n' "$*" | sed "s|$work|\$LAB|g"; "$@"; }

echo
echo "==> discover: trade the openapi token for join information and verify the cluster CA"
show "$bin/attach-node" discover \
    --control-plane "$LAB_CONTROL_PLANE" \
    --control-plane-ca "$LAB_DIR/control-plane-ca.pem" \
    --openapi-token-file "$LAB_DIR/openapi-token"

echo
echo "==> the same, kubeadm style (endpoint + bootstrap token + CA pin), as text"
show "$bin/attach-node" discover --output text \
    --endpoint "$LAB_API_SERVER" \
    --token-file "$LAB_DIR/bootstrap-token" \
    --ca-cert-hash "$LAB_CA_CERT_HASH"

echo
echo "==> a wrong pin is refused (exit 4), and nothing reaches stdout"
set +e
show "$bin/attach-node" discover \
    --endpoint "$LAB_API_SERVER" \
    --token-file "$LAB_DIR/bootstrap-token" \
    --ca-cert-hash "sha256:$(printf 'ab%.0s' $(seq 32))"
echo "exit code: $?"
set -e
