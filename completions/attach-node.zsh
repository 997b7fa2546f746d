#compdef attach-node

autoload -U is-at-least

_attach-node() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_attach-node_commands" \
"*::: :->attach-node" \
&& ret=0
    case $state in
    (attach-node)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:attach-node-command-$line[1]:"
        case $line[1] in
            (join)
_arguments "${_arguments_options[@]}" : \
'--control-plane=[Control plane that resolves openapi tokens (https\:// only) \[env\: ATTACH_NODE_CONTROL_PLANE\]]:URL:_default' \
'--control-plane-ca=[Extra CA bundle (PEM) for the control plane'\''s TLS; the system roots are used too \[env\: ATTACH_NODE_CONTROL_PLANE_CA\]]:FILE:_files' \
'--openapi-token=[The openapi token; visible to every user in \`ps\`\: prefer --openapi-token-file or the environment \[env\: ATTACH_NODE_OPENAPI_TOKEN\]]:TOKEN:_default' \
'--openapi-token-file=[Read the openapi token from FILE, or from standard input when FILE is \`-\`]:FILE:_files' \
'*--endpoint=[API server endpoint, https\://host\:port (repeatable; tried in order), when no openapi token is used \[env\: ATTACH_NODE_ENDPOINT, comma-separated\]]:URL:_default' \
'--token=[Bootstrap token <id>.<secret>, when no openapi token is used; visible in \`ps\`\: prefer --token-file \[env\: ATTACH_NODE_TOKEN\]]:TOKEN:_default' \
'--token-file=[Read the bootstrap token from FILE, or from standard input when FILE is \`-\`]:FILE:_files' \
'*--ca-cert-hash=[Pin of the cluster CA'\''s public key, sha256\:<hex> (repeatable; any may match)]:sha256:HEX:_default' \
'--node-name=[Node name; overrides the control plane'\''s node.nameSource]:NAME:_default' \
'--labels=[Extra node labels, k=v,... (over the control plane'\''s)]:K=V,...:_default' \
'--taints=[Extra node taints, k=v\:Effect,... (over the control plane'\''s)]:K=V:EFFECT,...:_default' \
'*--cluster-dns=[kubelet clusterDNS (repeatable or comma-separated; over the control plane'\''s)]:IP:_default' \
'--node-config=[attach_node.sh\: base64 of {"kubelet_config"\:{...}}, merged into the kubelet config]:BASE64:_default' \
'--node-name-mode=[attach_node.sh\: how to name the node\: hostname, nodeip (private-ip) or instance-id]:MODE:_default' \
'--root=[Treat DIR as the host'\''s / \: every file goes under it and nothing outside it is touched (tests, image baking)]:DIR:_files' \
'--wait=[After starting the kubelet, wait for nothing, for its credentials and Node (default), or for the Node to be Ready]:UNTIL:((none\:"Start the kubelet and return"
registered\:"Until the kubelet has its own credentials and its Node exists"
ready\:"Until the Node is Ready"))' \
'--wait-timeout=[Bound on that wait, e.g. 5m (default 5m); exit 7 when it passes]:DURATION:_default' \
'--config=[YAML or JSON file whose keys are the long flag names \[env\: ATTACH_NODE_CONFIG\]]:FILE:_files' \
'--timeout=[Overall deadline for network work, e.g. 90s, 5m, 1m30s \[default\: 5m\]]:DURATION:_default' \
'--output=[Output format on stdout]:FORMAT:(text json)' \
'--disk-device=[attach_node.sh\: format a data disk. Refused\: attach-node never formats disks]:DEVICE:_default' \
'--auto-fdisk=[attach_node.sh\: format the last data disk. Refused\: attach-node never formats disks]::AUTO_FDISK:_default' \
'--docker-version=[attach_node.sh\: install this Docker version (ignored, with a warning)]:DOCKER_VERSION:_default' \
'--runtime=[attach_node.sh\: container runtime name (ignored, with a warning)]:RUNTIME:_default' \
'--runtime-version=[attach_node.sh\: container runtime version (ignored, with a warning)]:RUNTIME_VERSION:_default' \
'--insecure-control-plane[Allow an http\:// control plane (the openapi token then crosses the network in clear text)]' \
'--ess[attach_node.sh\: this node is managed by a cluster autoscaler]' \
'--dry-run[Resolve, verify and plan; print the files (with diffs) and actions; change nothing, not even state]' \
'--force[Join even if a Ready Node of the same name exists]' \
'*-v[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'*--verbose[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(discover)
_arguments "${_arguments_options[@]}" : \
'--control-plane=[Control plane that resolves openapi tokens (https\:// only) \[env\: ATTACH_NODE_CONTROL_PLANE\]]:URL:_default' \
'--control-plane-ca=[Extra CA bundle (PEM) for the control plane'\''s TLS; the system roots are used too \[env\: ATTACH_NODE_CONTROL_PLANE_CA\]]:FILE:_files' \
'--openapi-token=[The openapi token; visible to every user in \`ps\`\: prefer --openapi-token-file or the environment \[env\: ATTACH_NODE_OPENAPI_TOKEN\]]:TOKEN:_default' \
'--openapi-token-file=[Read the openapi token from FILE, or from standard input when FILE is \`-\`]:FILE:_files' \
'*--endpoint=[API server endpoint, https\://host\:port (repeatable; tried in order), when no openapi token is used \[env\: ATTACH_NODE_ENDPOINT, comma-separated\]]:URL:_default' \
'--token=[Bootstrap token <id>.<secret>, when no openapi token is used; visible in \`ps\`\: prefer --token-file \[env\: ATTACH_NODE_TOKEN\]]:TOKEN:_default' \
'--token-file=[Read the bootstrap token from FILE, or from standard input when FILE is \`-\`]:FILE:_files' \
'*--ca-cert-hash=[Pin of the cluster CA'\''s public key, sha256\:<hex> (repeatable; any may match)]:sha256:HEX:_default' \
'--config=[YAML or JSON file whose keys are the long flag names \[env\: ATTACH_NODE_CONFIG\]]:FILE:_files' \
'--timeout=[Overall deadline for network work, e.g. 90s, 5m, 1m30s \[default\: 5m\]]:DURATION:_default' \
'--output=[Output format on stdout]:FORMAT:(text json)' \
'--disk-device=[attach_node.sh\: format a data disk. Refused\: attach-node never formats disks]:DEVICE:_default' \
'--auto-fdisk=[attach_node.sh\: format the last data disk. Refused\: attach-node never formats disks]::AUTO_FDISK:_default' \
'--docker-version=[attach_node.sh\: install this Docker version (ignored, with a warning)]:DOCKER_VERSION:_default' \
'--runtime=[attach_node.sh\: container runtime name (ignored, with a warning)]:RUNTIME:_default' \
'--runtime-version=[attach_node.sh\: container runtime version (ignored, with a warning)]:RUNTIME_VERSION:_default' \
'--insecure-control-plane[Allow an http\:// control plane (the openapi token then crosses the network in clear text)]' \
'*-v[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'*--verbose[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(reset)
_arguments "${_arguments_options[@]}" : \
'--root=[Treat DIR as the host'\''s / \: every file goes under it and nothing outside it is touched (tests, image baking)]:DIR:_files' \
'--config=[YAML or JSON file whose keys are the long flag names \[env\: ATTACH_NODE_CONFIG\]]:FILE:_files' \
'--timeout=[Overall deadline for network work, e.g. 90s, 5m, 1m30s \[default\: 5m\]]:DURATION:_default' \
'--output=[Output format on stdout]:FORMAT:(text json)' \
'--dry-run[Resolve, verify and plan; print the files (with diffs) and actions; change nothing, not even state]' \
'--force[Restore files even if they changed since the join]' \
'*-v[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'*--verbose[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
'--root=[Read the records of the root DIR instead of this host'\''s]:DIR:_files' \
'--config=[YAML or JSON file whose keys are the long flag names \[env\: ATTACH_NODE_CONFIG\]]:FILE:_files' \
'--timeout=[Overall deadline for network work, e.g. 90s, 5m, 1m30s \[default\: 5m\]]:DURATION:_default' \
'--output=[Output format on stdout]:FORMAT:(text json)' \
'*-v[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'*--verbose[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(uninstall)
_arguments "${_arguments_options[@]}" : \
'--root=[Treat DIR as the host'\''s / \: every file goes under it and nothing outside it is touched (tests, image baking)]:DIR:_files' \
'--config=[YAML or JSON file whose keys are the long flag names \[env\: ATTACH_NODE_CONFIG\]]:FILE:_files' \
'--timeout=[Overall deadline for network work, e.g. 90s, 5m, 1m30s \[default\: 5m\]]:DURATION:_default' \
'--output=[Output format on stdout]:FORMAT:(text json)' \
'--dry-run[Resolve, verify and plan; print the files (with diffs) and actions; change nothing, not even state]' \
'--force[Restore files even if they changed since the join]' \
'*-v[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'*--verbose[More log detail on stderr (-v, -vv); secrets stay masked at every level \[env\: ATTACH_NODE_LOG\]]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_attach-node__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:attach-node-help-command-$line[1]:"
        case $line[1] in
            (join)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(discover)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(reset)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(uninstall)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_attach-node_commands] )) ||
_attach-node_commands() {
    local commands; commands=(
'join:Prepare this host (or --root DIR) and join it as a worker node; --dry-run shows the plan' \
'discover:Resolve and verify only\: print the verified cluster facts as JSON on stdout; change nothing' \
'reset:Undo what join did, from its journal; leave the binary installed' \
'status:This host'\''s join state, from attach-node'\''s own records' \
'uninstall:Reset, then remove attach-node itself\: its binary, its units and its state' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'attach-node commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__discover_commands] )) ||
_attach-node__subcmd__discover_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node discover commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__help_commands] )) ||
_attach-node__subcmd__help_commands() {
    local commands; commands=(
'join:Prepare this host (or --root DIR) and join it as a worker node; --dry-run shows the plan' \
'discover:Resolve and verify only\: print the verified cluster facts as JSON on stdout; change nothing' \
'reset:Undo what join did, from its journal; leave the binary installed' \
'status:This host'\''s join state, from attach-node'\''s own records' \
'uninstall:Reset, then remove attach-node itself\: its binary, its units and its state' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'attach-node help commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__help__subcmd__discover_commands] )) ||
_attach-node__subcmd__help__subcmd__discover_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node help discover commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__help__subcmd__help_commands] )) ||
_attach-node__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node help help commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__help__subcmd__join_commands] )) ||
_attach-node__subcmd__help__subcmd__join_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node help join commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__help__subcmd__reset_commands] )) ||
_attach-node__subcmd__help__subcmd__reset_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node help reset commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__help__subcmd__status_commands] )) ||
_attach-node__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node help status commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__help__subcmd__uninstall_commands] )) ||
_attach-node__subcmd__help__subcmd__uninstall_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node help uninstall commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__join_commands] )) ||
_attach-node__subcmd__join_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node join commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__reset_commands] )) ||
_attach-node__subcmd__reset_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node reset commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__status_commands] )) ||
_attach-node__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node status commands' commands "$@"
}
(( $+functions[_attach-node__subcmd__uninstall_commands] )) ||
_attach-node__subcmd__uninstall_commands() {
    local commands; commands=()
    _describe -t commands 'attach-node uninstall commands' commands "$@"
}

if [ "$funcstack[1]" = "_attach-node" ]; then
    _attach-node "$@"
else
    compdef _attach-node attach-node
fi
