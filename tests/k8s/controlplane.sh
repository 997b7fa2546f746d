#!/usr/bin/env bash
# A throwaway Kubernetes control plane set up the kubeadm way, for tests that
# must meet a real API server rather than our loopback lab.
#
#   controlplane.sh start <bin-dir> <scratch-dir>   bring it up, print how to reach it
#   controlplane.sh exec  <scratch-dir> -- CMD...   run CMD in its network namespace
#   controlplane.sh stop  <scratch-dir>             kill what start started, remove scratch
#
# <bin-dir> holds the binaries tests/k8s/build.sh builds (build.sh --print-dir).
#
# Everything real kubeadm can do without a kubelet is done by kubeadm itself:
# the PKI and kubeconfigs (`init phase certs`, `kubeconfig`), the static pod
# manifests (`init phase etcd local`, `control-plane`) whose container
# commands are then run as plain processes, the kubeadm-config and
# kubelet-config ConfigMaps (`upload-config`), cluster-info with its RBAC and
# the node bootstrap bindings (`bootstrap-token`), and the token itself
# (`token create`). The real bootstrap signer in kube-controller-manager signs
# cluster-info; start waits for its signature.
#
# kubeadm runs chrooted (--rootfs) into <scratch-dir>/root, so it writes the
# /etc/kubernetes and /var/lib/etcd it believes in under there and nothing on
# the host. The manifests name those in-root paths; when a command is started
# on the host, every flag value that is an absolute path gets the root
# prepended, and that is the only change made to kubeadm's flags.
#
# It all runs in a network namespace of its own, held open by a sleeping
# process, so no host address or port is touched and several copies can run
# at once. kubeadm refuses a plain loopback advertise address; in the
# namespace, lo also carries 198.51.100.10 (TEST-NET-2) for the API server to
# advertise, which is the case kubeadm resolves a loopback address to. The
# controlPlaneEndpoint, and so cluster-info and admin.conf, is
# https://127.0.0.1:6443. Reach it with `controlplane.sh exec`.
#
# The bootstrap token goes to <scratch-dir>/token (0600), never to stdout.
set -euo pipefail

advertise=198.51.100.10
port=6443
marker=.attach-node-controlplane

die() {
	printf 'controlplane.sh: %s\n' "$*" >&2
	exit 1
}
say() { printf 'controlplane.sh: %s\n' "$*" >&2; }

usage() {
	die "usage: controlplane.sh start <bin-dir> <scratch-dir> | exec <scratch-dir> -- CMD... | stop <scratch-dir>"
}

# in_ns <scratch> CMD...: run CMD in the control plane's network namespace.
in_ns() {
	local scratch=$1
	shift
	local holder
	holder=$(cat "$scratch/netns.pid" 2>/dev/null) || die "no control plane in $scratch (no netns.pid)"
	nsenter --target "$holder" --net -- "$@"
}

# The container command of a static pod manifest, one argument per line.
# kubeadm writes each as a plain YAML block-sequence item under `command:`;
# a quoted item is unquoted.
manifest_command() {
	awk '
		/^ *- command:$/ { on = 1; ind = -1; next }
		on {
			if (match($0, /^ *- /) && (ind < 0 || RLENGTH == ind)) {
				ind = RLENGTH
				v = substr($0, RLENGTH + 1)
				if (v ~ /^".*"$/ || v ~ /^'\''.*'\''$/) v = substr(v, 2, length(v) - 2)
				print v
			} else exit
		}' "$1"
}

# start_component <scratch> <bin-dir> <name>: start the command of the
# kubeadm manifest <name>.yaml as a process in the namespace, paths rerooted.
start_component() {
	local scratch=$1 bin=$2 name=$3 root=$1/root
	local manifest=$root/etc/kubernetes/manifests/$name.yaml
	local -a cmd=()
	local arg
	[[ -f $manifest ]] || die "kubeadm wrote no manifest $manifest"
	while IFS= read -r arg; do
		if [[ ${#cmd[@]} -eq 0 ]]; then
			[[ $arg == "$name" ]] || die "$manifest runs '$arg', expected '$name'"
			cmd+=("$bin/$name")
		elif [[ $arg =~ ^(--[^=]+=)(/.*)$ ]]; then
			cmd+=("${BASH_REMATCH[1]}$root${BASH_REMATCH[2]}")
		else
			cmd+=("$arg")
		fi
	done < <(manifest_command "$manifest")
	[[ ${#cmd[@]} -gt 1 ]] || die "found no command in $manifest"
	printf '%q ' "${cmd[@]}" >"$scratch/$name.cmdline"
	# nsenter and setsid both exec, so $! is the component's own pid.
	nsenter --target "$(cat "$scratch/netns.pid")" --net -- setsid "${cmd[@]}" \
		</dev/null >"$scratch/logs/$name.log" 2>&1 &
	remember "$scratch" "$!"
	say "started $name (pid $!, log $scratch/logs/$name.log)"
}

# wait_for <seconds> CMD...: retry CMD every second until it succeeds.
wait_for() {
	local secs=$1
	shift
	local i
	for ((i = 0; i < secs; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	return 1
}

kubectl_admin() { # <scratch> <bin> ARGS...
	local scratch=$1 bin=$2
	shift 2
	in_ns "$scratch" "$bin/kubectl" --kubeconfig "$scratch/root/etc/kubernetes/admin.conf" "$@"
}

kubeadm_in_root() { # <scratch> <bin> ARGS...: kubeadm, chrooted into the root
	local scratch=$1 bin=$2
	shift 2
	in_ns "$scratch" "$bin/kubeadm" --rootfs "$scratch/root" "$@"
}

show_logs() {
	local f
	for f in "$1"/logs/*.log; do
		[[ -f $f ]] || continue
		printf '==== last lines of %s\n' "$f" >&2
		tail -n 15 "$f" >&2
	done
}

cmd_start() {
	[[ $# -eq 2 ]] || usage
	local bin scratch
	bin=$(cd "$1" 2>/dev/null && pwd) || die "no binary directory $1 (run tests/k8s/build.sh, then pass build.sh --print-dir)"
	local name
	for name in etcd kube-apiserver kube-controller-manager kubeadm kubectl; do
		[[ -x $bin/$name ]] || die "$bin/$name is missing: run tests/k8s/build.sh first"
	done
	# The scratch directory is ours alone: stop removes it whole.
	if [[ -e $2 ]]; then
		[[ -d $2 && -z $(ls -A "$2") ]] || die "scratch directory $2 exists and is not empty; pass a new path"
	fi
	mkdir -p "$2"
	scratch=$(cd "$2" && pwd)
	chmod 0700 "$scratch"
	: >"$scratch/$marker"
	mkdir -p "$scratch/logs" "$scratch/root/etc/kubernetes"
	local root=$scratch/root

	# If anything below fails, take down what is up and keep the logs.
	trap 'status=$?; if ((status)); then show_logs "$scratch"; say "start failed; stopping"; cmd_stop "$scratch" --keep || true; fi' EXIT

	local version
	version=$("$bin/kubeadm" version -o short)

	# The network namespace and its holder.
	setsid unshare --net -- sleep infinity </dev/null >/dev/null 2>&1 &
	echo "$!" >"$scratch/netns.pid"
	remember "$scratch" "$!"
	own_netns() { [[ $(readlink "/proc/$1/ns/net") != "$(readlink /proc/self/ns/net)" ]]; }
	wait_for 5 own_netns "$!" ||
		die "could not create a network namespace"
	in_ns "$scratch" ip link set lo up
	in_ns "$scratch" ip addr add "$advertise/32" dev lo

	cat >"$root/kubeadm.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $advertise
  bindPort: $port
nodeRegistration:
  name: control-plane
  # Named so that kubeadm does not go looking for a runtime in the root.
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: attach-node-test
kubernetesVersion: $version
controlPlaneEndpoint: 127.0.0.1:$port
networking:
  serviceSubnet: 10.96.0.0/12
  podSubnet: 10.244.0.0/16
  dnsDomain: cluster.local
apiServer:
  certSANs: [127.0.0.1]
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
EOF
	chmod 0600 "$root/kubeadm.yaml"

	local log=$scratch/logs/kubeadm.log
	say "kubeadm $version: certs, kubeconfigs, manifests (log $log)"
	{
		kubeadm_in_root "$scratch" "$bin" init phase certs all --config /kubeadm.yaml
		kubeadm_in_root "$scratch" "$bin" init phase kubeconfig all --config /kubeadm.yaml
		kubeadm_in_root "$scratch" "$bin" init phase etcd local --config /kubeadm.yaml
		kubeadm_in_root "$scratch" "$bin" init phase control-plane all --config /kubeadm.yaml
	} >>"$log" 2>&1 || die "a kubeadm init phase failed; see $log"

	start_component "$scratch" "$bin" etcd
	start_component "$scratch" "$bin" kube-apiserver
	wait_for 120 kubectl_admin "$scratch" "$bin" get --raw /readyz ||
		die "the API server did not become ready in 120 s; see $scratch/logs/kube-apiserver.log"
	start_component "$scratch" "$bin" kube-controller-manager

	say "kubeadm: upload-config, bootstrap-token, token create"
	{
		kubeadm_in_root "$scratch" "$bin" init phase upload-config all --config /kubeadm.yaml
		# --skip-token-print: the phase would print the default token it makes.
		kubeadm_in_root "$scratch" "$bin" init phase bootstrap-token --config /kubeadm.yaml --skip-token-print
	} >>"$log" 2>&1 || die "a kubeadm init phase failed; see $log"
	# The token goes straight from kubeadm's stdout into a 0600 file.
	# --config: without it kubeadm looks for the advertise address on the
	# default route's interface, and the namespace has no default route.
	# (kubeadm then refuses other flags such as --description.)
	(umask 077 && kubeadm_in_root "$scratch" "$bin" token create --config /kubeadm.yaml >"$scratch/token") 2>>"$log" ||
		die "kubeadm token create failed; see $log"
	local token_id
	token_id=$(cut -c1-6 "$scratch/token")
	[[ $token_id =~ ^[a-z0-9]{6}$ ]] || die "kubeadm token create wrote no token to $scratch/token"

	signed() {
		[[ -n $(kubectl_admin "$scratch" "$bin" -n kube-public get configmap cluster-info \
			-o "jsonpath={.data.jws-kubeconfig-$token_id}") ]]
	}
	wait_for 60 signed ||
		die "kube-controller-manager's bootstrap signer did not sign cluster-info for the token in 60 s; see $scratch/logs/kube-controller-manager.log"

	local hash
	hash=$(openssl x509 -in "$root/etc/kubernetes/pki/ca.crt" -noout -pubkey |
		openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
	trap - EXIT
	say "up: Kubernetes $version; run clients with: $0 exec $scratch -- CMD"
	cat <<EOF
endpoint=https://127.0.0.1:$port
token_file=$scratch/token
ca_cert_hash=sha256:$hash
kubeconfig=$root/etc/kubernetes/admin.conf
version=$version
EOF
}

cmd_exec() {
	[[ $# -ge 3 && $2 == -- ]] || usage
	local scratch=$1
	shift 2
	in_ns "$scratch" "$@"
}

# start_time <pid>: when the process started (stat field 22), which tells
# it from a later process that got the same pid.
start_time() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	# shellcheck disable=SC2086 # split into fields on purpose
	set -- $stat
	printf '%s' "${20}"
}

# remember <scratch> <pid>: record a process for stop to end.
remember() {
	printf '%s %s\n' "$2" "$(start_time "$2")" >>"$1/pids"
}

# running <pid>: alive and not a zombie waiting for whoever reaps orphans.
running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# stop <scratch> [--keep]: kill every process start recorded, then remove the
# scratch directory (kept with --keep, for the logs of a failed start).
cmd_stop() {
	[[ $# -ge 1 ]] || usage
	local scratch=$1 keep=${2-}
	[[ -f $scratch/$marker ]] || die "$scratch is not a control plane scratch directory (no $marker); refusing to remove it"
	local pid started pids=()
	if [[ -f $scratch/pids ]]; then
		while read -r pid started; do
			# Only a pid that still names the process start saw.
			if [[ $pid =~ ^[0-9]+$ && $(start_time "$pid") == "$started" ]]; then
				pids+=("$pid")
			fi
		done <"$scratch/pids"
	fi
	# One at a time, newest first: the API server and the controller manager
	# go before etcd, the namespace's holder last. Each gets 5 s to exit on
	# SIGTERM (an API server still talking to etcd takes much longer to
	# drain), then SIGKILL: nothing in a throwaway cluster is worth waiting for.
	local i j
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		for ((j = 0; j < 50; j++)); do
			running "$pid" || break
			sleep 0.1
		done
		if running "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	if [[ $keep == --keep ]]; then
		rm -f "$scratch/pids"
		say "stopped; kept $scratch for its logs"
	else
		rm -rf "$scratch"
		say "stopped and removed $scratch"
	fi
}

case ${1-} in
start) shift && cmd_start "$@" ;;
exec) shift && cmd_exec "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) usage ;;
esac
