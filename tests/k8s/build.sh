#!/usr/bin/env bash
# Builds the upstream binaries the real-cluster tests run: kube-apiserver,
# kube-controller-manager, kubelet, kubeadm and kubectl from the release
# pinned in kube/go.mod, and etcd from the release pinned in etcd/go.mod.
#
# They land in one directory keyed by the Kubernetes version,
#   ${ATTACH_NODE_K8S_CACHE:-/var/cache/attach-node-k8s}/<version>/
# and a binary already there is not built again, so a second run is a no-op.
# Each binary is linked under a temporary name and renamed into place, so an
# interrupted build never leaves a truncated binary that a later run would
# take for a finished one.
#
# Usage: tests/k8s/build.sh            build what is missing, report each
#        tests/k8s/build.sh --print-dir print the directory and exit
#
# The module files are read-only here (-mod=readonly): this script never
# changes a pin. To move to another release, edit the require and replace
# lines by hand and run `go mod tidy` in that module; never `go get -u`,
# which pulls dependencies newer than the pinned Go toolchain can build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
	printf 'build.sh: %s\n' "$*" >&2
	exit 1
}

# The version each module requires, read from its go.mod.
required() { # <go.mod> <module path>
	awk -v m="$2" '($1 == "require" && $2 == m) || ($1 == m && NF == 2) { print ($1 == "require" ? $3 : $2); exit }' "$1"
}

kube_version=$(required "$here/kube/go.mod" k8s.io/kubernetes)
etcd_version=$(required "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)
[[ $kube_version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] ||
	die "kube/go.mod must require k8s.io/kubernetes at a release v1.X.Y, found '${kube_version}'"
kube_minor=${BASH_REMATCH[1]}
[[ -n $etcd_version ]] || die "etcd/go.mod does not require go.etcd.io/etcd/server/v3"

cache_root=${ATTACH_NODE_K8S_CACHE:-/var/cache/attach-node-k8s}
out="$cache_root/$kube_version"

if [[ ${1-} == --print-dir ]]; then
	printf '%s\n' "$out"
	exit 0
elif [[ $# -gt 0 ]]; then
	die "unknown argument '$1' (usage: build.sh [--print-dir])"
fi

command -v go >/dev/null || die "no 'go' on PATH; install Go $(awk '$1 == "go" { print $2 }' "$here/kube/go.mod") or newer"

# Never let go fetch another toolchain or rewrite go.mod/go.sum.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath" CGO_ENABLED=0

mkdir -p "$out"
exec 9>"$cache_root/.lock"
flock 9 # two concurrent runs would only build the same thing twice

tmp=
trap '[[ -z $tmp ]] || rm -f "$tmp"' EXIT

fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

built=()
build_one() { # <module dir> <name> <package> <ldflags>
	local dir=$1 name=$2 pkg=$3 ldflags=$4 start secs size
	start=$(date +%s)
	tmp="$out/.$name.partial.$$"
	printf 'building %s (%s) ...\n' "$name" "$pkg"
	(cd "$dir" && nice -n 19 go build -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$tmp" "$pkg") ||
		die "building $name failed (see the go output above)"
	mv -f "$tmp" "$out/$name"
	tmp=
	secs=$(($(date +%s) - start))
	size=$(du -m "$out/$name" | cut -f1)
	printf 'built    %s in %s (%s MB)\n' "$name" "$(fmt_secs "$secs")" "$size"
	built+=("$name $(fmt_secs "$secs")")
}

total_start=$(date +%s)

# Every staging module k8s.io/kubernetes replaces with ./staging must be
# replaced here by its published v0.X.Y; check that before a long build.
# The control plane's binaries first and the kubelet last, so that a test
# of the control plane alone can start while the kubelet still builds.
kube_bins=(kube-apiserver kube-controller-manager kubeadm kubectl)
need_kube=0
for name in "${kube_bins[@]}" kubelet; do
	[[ -x $out/$name ]] || need_kube=1
done
ld=
if ((need_kube)); then
	(cd "$here/kube" && nice -n 19 go mod download k8s.io/kubernetes) ||
		die "cannot download k8s.io/kubernetes@$kube_version (is the Go module proxy reachable?)"
	upstream_mod=$(cd "$here/kube" && go mod download -json k8s.io/kubernetes | awk -F'"' '$2 == "GoMod" { print $4 }')
	want=$(awk '$1 == "replace" && $2 == "(" { r = 1; next } r && $1 == ")" { r = 0 } r && $3 ~ /^\.\/staging\// { print $1 }' "$upstream_mod" | sort)
	have=$(awk -v v="v0.$kube_minor.${kube_version##*.}" '$2 == "=>" && $4 == v { print $1 }' "$here/kube/go.mod" | sort)
	[[ -n $want ]] || die "found no staging replaces in $upstream_mod"
	missing=$(comm -23 <(printf '%s\n' "$want") <(printf '%s\n' "$have"))
	[[ -z $missing ]] ||
		die "kube/go.mod must replace these staging modules with v0.$kube_minor.${kube_version##*.}: $(echo "$missing" | tr '\n' ' ')"

	# The version stamps upstream's hack/lib/version.sh sets, so that
	# /version and `--version` tell the truth. The build date is the
	# release's own timestamp from the module proxy, which keeps the
	# binaries reproducible. gitCommit stays empty: the module zip has no git.
	info=${upstream_mod%.mod}.info
	build_date=$(awk -F'"' '{ for (i = 1; i < NF; i++) if ($i == "Time") print $(i + 2) }' "$info")
	ld="-s -w"
	for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ld+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
		ld+=" -X $pkg.buildDate=${build_date:-1970-01-01T00:00:00Z}"
	done
fi

kube_one() { # <name>
	if [[ -x $out/$1 ]]; then
		printf 'present  %s\n' "$1"
	else
		build_one "$here/kube" "$1" "k8s.io/kubernetes/cmd/$1" "$ld"
	fi
}

for name in "${kube_bins[@]}"; do
	kube_one "$name"
done

# etcd's version is a constant in its source, so asking the binary tells
# whether the one in the cache is the pinned one.
if [[ -x $out/etcd ]] && "$out/etcd" --version 2>/dev/null | grep -qx "etcd Version: ${etcd_version#v}"; then
	printf 'present  etcd\n'
else
	build_one "$here/etcd" etcd go.etcd.io/etcd/server/v3 "-s -w"
fi

kube_one kubelet

if ((${#built[@]})); then
	printf 'built %d binaries into %s in %s: %s\n' "${#built[@]}" "$out" \
		"$(fmt_secs $(($(date +%s) - total_start)))" "$(IFS=,; echo "${built[*]}")"
else
	printf 'nothing to build: all six binaries for %s are in %s\n' "$kube_version" "$out"
fi
