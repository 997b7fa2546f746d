#!/usr/bin/env bash
# Benchmark: `attach-node discover` against the loopback lab, whole process,
# side by side in one run with curl doing the same three fetches (control
# plane with the openapi token; cluster-info without verification;
# cluster-info verified by the cluster CA). curl checks no JWS and no pin:
# it is the floor of what any script doing this work costs.
#
# Usage: bench/discover.sh [RUNS]   (writes bench/results/discover.{json,md})
# Needs: hyperfine, GNU time (apt-get install hyperfine time), curl.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}

# shellcheck source=bench/lib.sh
. bench/lib.sh
start_lab --quiet

# The token goes to curl in a header file, not argv, as a careful script would.
printf 'Authorization: Bearer %s\n' "$(cat "$LAB_OPENAPI_TOKEN_FILE")" >"$work/auth-header"
chmod 600 "$work/auth-header"
ci="$LAB_API_SERVER/api/v1/namespaces/kube-public/configmaps/cluster-info"

cat >"$work/curl3.sh" <<CURL
#!/bin/sh
set -e
curl -sSf --cacert '$LAB_CONTROL_PLANE_CA' -H @'$work/auth-header' '$LAB_CONTROL_PLANE/v1/node-attach' >/dev/null
curl -sSfk '$ci' >/dev/null
curl -sSf --cacert '$LAB_CLUSTER_CA' '$ci' >/dev/null
CURL
chmod +x "$work/curl3.sh"

an=("$bin/attach-node" discover --control-plane "$LAB_CONTROL_PLANE" --control-plane-ca "$LAB_CONTROL_PLANE_CA" --openapi-token-file "$LAB_OPENAPI_TOKEN_FILE")

hyperfine --shell=none --warmup 5 --runs "$runs" \
    --export-json "$out/discover.json" --export-markdown "$out/discover.md" \
    -n "attach-node discover" "${an[*]}" \
    -n "curl x3 (sh script)" "$work/curl3.sh"

rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1; }
# Peak RSS: the largest single process. For the curl script, the three curls
# run one after another, so the peak is the largest of them (time reports
# the maximum over the waited-for children).
echo
echo "peak RSS (KiB), median of 9:"
for name in an curl; do
    vals=()
    for _ in $(seq 9); do
        if [ $name = an ]; then vals+=("$(rss "${an[@]}")"); else vals+=("$(rss "$work/curl3.sh")"); fi
    done
    printf '%s\n' "${vals[@]}" | sort -n | sed -n 5p | sed "s/^/$name: /"
done | tee "$out/discover-rss.txt"
echo "binary size: $(stat -c %s "$bin/attach-node") bytes" | tee -a "$out/discover-rss.txt"
