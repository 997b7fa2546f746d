# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_attach_node_global_optspecs
    string join \n h/help V/version
end

function __fish_attach_node_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_attach_node_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_attach_node_using_subcommand
    set -l cmd (__fish_attach_node_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c attach-node -n "__fish_attach_node_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c attach-node -n "__fish_attach_node_needs_command" -s V -l version -d 'Print version'
complete -c attach-node -n "__fish_attach_node_needs_command" -f -a "join" -d 'Prepare this host (or --root DIR) and join it as a worker node; --dry-run shows the plan'
complete -c attach-node -n "__fish_attach_node_needs_command" -f -a "discover" -d 'Resolve and verify only: print the verified cluster facts as JSON on stdout; change nothing'
complete -c attach-node -n "__fish_attach_node_needs_command" -f -a "reset" -d 'Undo what join did, from its journal; leave the binary installed'
complete -c attach-node -n "__fish_attach_node_needs_command" -f -a "status" -d 'This host\'s join state, from attach-node\'s own records'
complete -c attach-node -n "__fish_attach_node_needs_command" -f -a "uninstall" -d 'Reset, then remove attach-node itself: its binary, its units and its state'
complete -c attach-node -n "__fish_attach_node_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l control-plane -d 'Control plane that resolves openapi tokens (https:// only) [env: ATTACH_NODE_CONTROL_PLANE]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l control-plane-ca -d 'Extra CA bundle (PEM) for the control plane\'s TLS; the system roots are used too [env: ATTACH_NODE_CONTROL_PLANE_CA]' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l openapi-token -d 'The openapi token; visible to every user in `ps`: prefer --openapi-token-file or the environment [env: ATTACH_NODE_OPENAPI_TOKEN]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l openapi-token-file -d 'Read the openapi token from FILE, or from standard input when FILE is `-`' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l endpoint -d 'API server endpoint, https://host:port (repeatable; tried in order), when no openapi token is used [env: ATTACH_NODE_ENDPOINT, comma-separated]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l token -d 'Bootstrap token <id>.<secret>, when no openapi token is used; visible in `ps`: prefer --token-file [env: ATTACH_NODE_TOKEN]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l token-file -d 'Read the bootstrap token from FILE, or from standard input when FILE is `-`' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l ca-cert-hash -d 'Pin of the cluster CA\'s public key, sha256:<hex> (repeatable; any may match)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l node-name -d 'Node name; overrides the control plane\'s node.nameSource' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l labels -d 'Extra node labels, k=v,... (over the control plane\'s)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l taints -d 'Extra node taints, k=v:Effect,... (over the control plane\'s)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l cluster-dns -d 'kubelet clusterDNS (repeatable or comma-separated; over the control plane\'s)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l node-config -d 'attach_node.sh: base64 of {"kubelet_config":{...}}, merged into the kubelet config' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l node-name-mode -d 'attach_node.sh: how to name the node: hostname, nodeip (private-ip) or instance-id' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l root -d 'Treat DIR as the host\'s / : every file goes under it and nothing outside it is touched (tests, image baking)' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l wait -d 'After starting the kubelet, wait for nothing, for its credentials and Node (default), or for the Node to be Ready' -r -f -a "none\t'Start the kubelet and return'
registered\t'Until the kubelet has its own credentials and its Node exists'
ready\t'Until the Node is Ready'"
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l wait-timeout -d 'Bound on that wait, e.g. 5m (default 5m); exit 7 when it passes' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l config -d 'YAML or JSON file whose keys are the long flag names [env: ATTACH_NODE_CONFIG]' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l timeout -d 'Overall deadline for network work, e.g. 90s, 5m, 1m30s [default: 5m]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l output -d 'Output format on stdout' -r -f -a "text\t''
json\t''"
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l disk-device -d 'attach_node.sh: format a data disk. Refused: attach-node never formats disks' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l auto-fdisk -d 'attach_node.sh: format the last data disk. Refused: attach-node never formats disks' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l docker-version -d 'attach_node.sh: install this Docker version (ignored, with a warning)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l runtime -d 'attach_node.sh: container runtime name (ignored, with a warning)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l runtime-version -d 'attach_node.sh: container runtime version (ignored, with a warning)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l insecure-control-plane -d 'Allow an http:// control plane (the openapi token then crosses the network in clear text)'
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l ess -d 'attach_node.sh: this node is managed by a cluster autoscaler'
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l dry-run -d 'Resolve, verify and plan; print the files (with diffs) and actions; change nothing, not even state'
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -l force -d 'Join even if a Ready Node of the same name exists'
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -s v -l verbose -d 'More log detail on stderr (-v, -vv); secrets stay masked at every level [env: ATTACH_NODE_LOG]'
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c attach-node -n "__fish_attach_node_using_subcommand join" -s V -l version -d 'Print version'
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l control-plane -d 'Control plane that resolves openapi tokens (https:// only) [env: ATTACH_NODE_CONTROL_PLANE]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l control-plane-ca -d 'Extra CA bundle (PEM) for the control plane\'s TLS; the system roots are used too [env: ATTACH_NODE_CONTROL_PLANE_CA]' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l openapi-token -d 'The openapi token; visible to every user in `ps`: prefer --openapi-token-file or the environment [env: ATTACH_NODE_OPENAPI_TOKEN]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l openapi-token-file -d 'Read the openapi token from FILE, or from standard input when FILE is `-`' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l endpoint -d 'API server endpoint, https://host:port (repeatable; tried in order), when no openapi token is used [env: ATTACH_NODE_ENDPOINT, comma-separated]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l token -d 'Bootstrap token <id>.<secret>, when no openapi token is used; visible in `ps`: prefer --token-file [env: ATTACH_NODE_TOKEN]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l token-file -d 'Read the bootstrap token from FILE, or from standard input when FILE is `-`' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l ca-cert-hash -d 'Pin of the cluster CA\'s public key, sha256:<hex> (repeatable; any may match)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l config -d 'YAML or JSON file whose keys are the long flag names [env: ATTACH_NODE_CONFIG]' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l timeout -d 'Overall deadline for network work, e.g. 90s, 5m, 1m30s [default: 5m]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l output -d 'Output format on stdout' -r -f -a "text\t''
json\t''"
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l disk-device -d 'attach_node.sh: format a data disk. Refused: attach-node never formats disks' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l auto-fdisk -d 'attach_node.sh: format the last data disk. Refused: attach-node never formats disks' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l docker-version -d 'attach_node.sh: install this Docker version (ignored, with a warning)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l runtime -d 'attach_node.sh: container runtime name (ignored, with a warning)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l runtime-version -d 'attach_node.sh: container runtime version (ignored, with a warning)' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -l insecure-control-plane -d 'Allow an http:// control plane (the openapi token then crosses the network in clear text)'
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -s v -l verbose -d 'More log detail on stderr (-v, -vv); secrets stay masked at every level [env: ATTACH_NODE_LOG]'
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -s h -l help -d 'Print help'
complete -c attach-node -n "__fish_attach_node_using_subcommand discover" -s V -l version -d 'Print version'
complete -c attach-node -n "__fish_attach_node_using_subcommand reset" -l root -d 'Treat DIR as the host\'s / : every file goes under it and nothing outside it is touched (tests, image baking)' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand reset" -l config -d 'YAML or JSON file whose keys are the long flag names [env: ATTACH_NODE_CONFIG]' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand reset" -l timeout -d 'Overall deadline for network work, e.g. 90s, 5m, 1m30s [default: 5m]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand reset" -l output -d 'Output format on stdout' -r -f -a "text\t''
json\t''"
complete -c attach-node -n "__fish_attach_node_using_subcommand reset" -l dry-run -d 'Resolve, verify and plan; print the files (with diffs) and actions; change nothing, not even state'
complete -c attach-node -n "__fish_attach_node_using_subcommand reset" -l force -d 'Restore files even if they changed since the join'
complete -c attach-node -n "__fish_attach_node_using_subcommand reset" -s v -l verbose -d 'More log detail on stderr (-v, -vv); secrets stay masked at every level [env: ATTACH_NODE_LOG]'
complete -c attach-node -n "__fish_attach_node_using_subcommand reset" -s h -l help -d 'Print help'
complete -c attach-node -n "__fish_attach_node_using_subcommand reset" -s V -l version -d 'Print version'
complete -c attach-node -n "__fish_attach_node_using_subcommand status" -l root -d 'Read the records of the root DIR instead of this host\'s' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand status" -l config -d 'YAML or JSON file whose keys are the long flag names [env: ATTACH_NODE_CONFIG]' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand status" -l timeout -d 'Overall deadline for network work, e.g. 90s, 5m, 1m30s [default: 5m]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand status" -l output -d 'Output format on stdout' -r -f -a "text\t''
json\t''"
complete -c attach-node -n "__fish_attach_node_using_subcommand status" -s v -l verbose -d 'More log detail on stderr (-v, -vv); secrets stay masked at every level [env: ATTACH_NODE_LOG]'
complete -c attach-node -n "__fish_attach_node_using_subcommand status" -s h -l help -d 'Print help'
complete -c attach-node -n "__fish_attach_node_using_subcommand status" -s V -l version -d 'Print version'
complete -c attach-node -n "__fish_attach_node_using_subcommand uninstall" -l root -d 'Treat DIR as the host\'s / : every file goes under it and nothing outside it is touched (tests, image baking)' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand uninstall" -l config -d 'YAML or JSON file whose keys are the long flag names [env: ATTACH_NODE_CONFIG]' -r -F
complete -c attach-node -n "__fish_attach_node_using_subcommand uninstall" -l timeout -d 'Overall deadline for network work, e.g. 90s, 5m, 1m30s [default: 5m]' -r
complete -c attach-node -n "__fish_attach_node_using_subcommand uninstall" -l output -d 'Output format on stdout' -r -f -a "text\t''
json\t''"
complete -c attach-node -n "__fish_attach_node_using_subcommand uninstall" -l dry-run -d 'Resolve, verify and plan; print the files (with diffs) and actions; change nothing, not even state'
complete -c attach-node -n "__fish_attach_node_using_subcommand uninstall" -l force -d 'Restore files even if they changed since the join'
complete -c attach-node -n "__fish_attach_node_using_subcommand uninstall" -s v -l verbose -d 'More log detail on stderr (-v, -vv); secrets stay masked at every level [env: ATTACH_NODE_LOG]'
complete -c attach-node -n "__fish_attach_node_using_subcommand uninstall" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c attach-node -n "__fish_attach_node_using_subcommand uninstall" -s V -l version -d 'Print version'
complete -c attach-node -n "__fish_attach_node_using_subcommand help; and not __fish_seen_subcommand_from join discover reset status uninstall help" -f -a "join" -d 'Prepare this host (or --root DIR) and join it as a worker node; --dry-run shows the plan'
complete -c attach-node -n "__fish_attach_node_using_subcommand help; and not __fish_seen_subcommand_from join discover reset status uninstall help" -f -a "discover" -d 'Resolve and verify only: print the verified cluster facts as JSON on stdout; change nothing'
complete -c attach-node -n "__fish_attach_node_using_subcommand help; and not __fish_seen_subcommand_from join discover reset status uninstall help" -f -a "reset" -d 'Undo what join did, from its journal; leave the binary installed'
complete -c attach-node -n "__fish_attach_node_using_subcommand help; and not __fish_seen_subcommand_from join discover reset status uninstall help" -f -a "status" -d 'This host\'s join state, from attach-node\'s own records'
complete -c attach-node -n "__fish_attach_node_using_subcommand help; and not __fish_seen_subcommand_from join discover reset status uninstall help" -f -a "uninstall" -d 'Reset, then remove attach-node itself: its binary, its units and its state'
complete -c attach-node -n "__fish_attach_node_using_subcommand help; and not __fish_seen_subcommand_from join discover reset status uninstall help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
