//! The command line, as clap definitions only. Values stay raw here (strings,
//! paths, counts); `settings` validates and merges them with the environment
//! and the config file, so there is one validation path for all three.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "attach-node",
    version,
    about = "Turn this Linux host into a Kubernetes worker node, and take it out again",
    long_about = "Turn this Linux host into a Kubernetes worker node, and take it out again.\n\n\
        attach-node trades an openapi token (or an API server endpoint and a bootstrap token) for \
        the cluster's join information, verifies the cluster CA the kubeadm way, and prints what \
        it would change before it changes anything.\n\n\
        Exit codes: 0 success, 1 internal error, 2 usage, 3 rejected by the control plane, \
        4 trust failure, 5 unreachable, 6 host change failed, 7 timed out waiting for the node, \
        8 busy, 9 preflight failed.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare this host (or --root DIR) and join it as a worker node; --dry-run shows the plan
    Join(Box<JoinArgs>),
    /// Resolve and verify only: print the verified cluster facts as JSON on stdout; change nothing
    Discover(Box<DiscoverArgs>),
    /// Undo what join did, from its journal; leave the binary installed
    Reset(ResetArgs),
    /// This host's join state, from attach-node's own records
    Status(StatusArgs),
    /// Reset, then remove attach-node itself: its binary, its units and its state
    ///
    /// What the attach-node package installed (/usr/bin/attach-node, the unit in
    /// /usr/lib/systemd/system, the man pages) is kept and named: the package manager
    /// removes it (apt remove attach-node, dnf remove attach-node).
    Uninstall(ResetArgs),
}

/// attach_node.sh was run with flags only (`attach_node.sh --openapi-token
/// ... --endpoint ...`); its flags alone mean `join` here too.
pub fn with_default_subcommand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const SUBCOMMANDS: &[&str] = &["join", "discover", "reset", "status", "uninstall", "help"];
    let first = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let is_flag = first.starts_with('-') && first.len() > 1;
    let asks_help = matches!(first, "--help" | "-h" | "--version" | "-V");
    if !is_flag || asks_help {
        return args;
    }
    // `attach-node -v status` names its subcommand after a flag (and clap
    // then says what is wrong with that); `--node-name reset` only gives a
    // flag a value that happens to be a subcommand's name.
    let names_one = first_operand(&args[1..]).is_some_and(|a| SUBCOMMANDS.contains(&a));
    if !names_one {
        args.insert(1, "join".into());
    }
    args
}

/// The first argument that is neither a flag nor a flag's value, reading
/// the flags as `join` defines them (`--name value`, `--name=value`, `-v`).
fn first_operand(args: &[std::ffi::OsString]) -> Option<&str> {
    let cli = <Cli as clap::CommandFactory>::command();
    let join = cli.find_subcommand("join")?;
    let takes_value = |flag: &str| {
        join.get_arguments()
            .find(|a| match flag.strip_prefix("--") {
                Some(long) => a.get_long() == Some(long),
                None => {
                    let mut short = flag[1..].chars();
                    a.get_short().is_some()
                        && a.get_short() == short.next()
                        && short.next().is_none()
                }
            })
            .is_some_and(|a| a.get_action().takes_values())
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        if arg == "--" {
            return rest.next().and_then(|a| a.to_str());
        }
        if !(arg.starts_with('-') && arg.len() > 1) {
            return Some(arg);
        }
        if !arg.contains('=') && takes_value(arg) {
            rest.next();
        }
    }
    None
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub host: HostArgs,
    /// Join even if a Ready Node of the same name exists
    #[arg(long)]
    pub force: bool,
    /// After starting the kubelet, wait for nothing, for its credentials and Node (default), or for the Node to be Ready
    #[arg(long, value_enum, value_name = "UNTIL")]
    pub wait: Option<crate::wait::Wait>,
    /// Bound on that wait, e.g. 5m (default 5m); exit 7 when it passes
    #[arg(long, value_name = "DURATION")]
    pub wait_timeout: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub legacy: LegacyArgs,
}

/// What this node is and how its kubelet runs.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Node")]
pub struct NodeArgs {
    /// Node name; overrides the control plane's node.nameSource
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,

    /// Extra node labels, k=v,... (over the control plane's)
    #[arg(long, value_name = "K=V,...")]
    pub labels: Option<String>,

    /// Extra node taints, k=v:Effect,... (over the control plane's)
    #[arg(long, value_name = "K=V:EFFECT,...")]
    pub taints: Option<String>,

    /// kubelet clusterDNS (repeatable or comma-separated; over the control plane's)
    #[arg(long, value_name = "IP")]
    pub cluster_dns: Vec<String>,

    /// attach_node.sh: base64 of {"kubelet_config":{...}}, merged into the kubelet config
    #[arg(long, value_name = "BASE64")]
    pub node_config: Option<String>,

    /// attach_node.sh: this node is managed by a cluster autoscaler
    #[arg(long)]
    pub ess: bool,

    /// attach_node.sh: how to name the node: hostname, nodeip (private-ip) or instance-id
    #[arg(long, value_name = "MODE")]
    pub node_name_mode: Option<String>,
}

/// Where the changes go.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Host")]
pub struct HostArgs {
    /// Treat DIR as the host's / : every file goes under it and nothing outside it is touched (tests, image baking)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Resolve, verify and plan; print the files (with diffs) and actions; change nothing, not even state
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub host: HostArgs,
    /// Restore files even if they changed since the join
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Read the records of the root DIR instead of this host's
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub legacy: LegacyArgs,
}

/// Where the cluster's join information comes from.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Cluster source")]
pub struct SourceArgs {
    /// Control plane that resolves openapi tokens (https:// only) [env: ATTACH_NODE_CONTROL_PLANE]
    #[arg(long, value_name = "URL")]
    pub control_plane: Option<String>,

    /// Extra CA bundle (PEM) for the control plane's TLS; the system roots are used too [env: ATTACH_NODE_CONTROL_PLANE_CA]
    #[arg(long, value_name = "FILE")]
    pub control_plane_ca: Option<PathBuf>,

    /// Allow an http:// control plane (the openapi token then crosses the network in clear text)
    #[arg(long)]
    pub insecure_control_plane: bool,

    /// The openapi token; visible to every user in `ps`: prefer --openapi-token-file or the environment [env: ATTACH_NODE_OPENAPI_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub openapi_token: Option<String>,

    /// Read the openapi token from FILE, or from standard input when FILE is `-`
    #[arg(long, value_name = "FILE")]
    pub openapi_token_file: Option<PathBuf>,

    /// API server endpoint, https://host:port (repeatable; tried in order), when no openapi token is used [env: ATTACH_NODE_ENDPOINT, comma-separated]
    #[arg(long, value_name = "URL")]
    pub endpoint: Vec<String>,

    /// Bootstrap token <id>.<secret>, when no openapi token is used; visible in `ps`: prefer --token-file [env: ATTACH_NODE_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Read the bootstrap token from FILE, or from standard input when FILE is `-`
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Pin of the cluster CA's public key, sha256:<hex> (repeatable; any may match)
    #[arg(long, value_name = "sha256:HEX")]
    pub ca_cert_hash: Vec<String>,
}

/// Flags every command shares.
#[derive(Debug, Default, Args)]
pub struct CommonArgs {
    /// YAML or JSON file whose keys are the long flag names [env: ATTACH_NODE_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Overall deadline for network work, e.g. 90s, 5m, 1m30s [default: 5m]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Output format on stdout
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// More log detail on stderr (-v, -vv); secrets stay masked at every level [env: ATTACH_NODE_LOG]
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// attach_node.sh flags that have no meaning here: accepted and warned
/// about, or refused when honouring them could destroy data.
#[derive(Debug, Default, Args)]
pub struct LegacyArgs {
    /// attach_node.sh: format a data disk. Refused: attach-node never formats disks
    #[arg(long, hide = true, value_name = "DEVICE")]
    pub disk_device: Option<String>,

    /// attach_node.sh: format the last data disk. Refused: attach-node never formats disks
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub auto_fdisk: Option<String>,

    /// attach_node.sh: install this Docker version (ignored, with a warning)
    #[arg(long, hide = true)]
    pub docker_version: Option<String>,

    /// attach_node.sh: container runtime name (ignored, with a warning)
    #[arg(long, hide = true)]
    pub runtime: Option<String>,

    /// attach_node.sh: container runtime version (ignored, with a warning)
    #[arg(long, hide = true)]
    pub runtime_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_default(args: &[&str]) -> Vec<String> {
        let mut argv = vec!["attach-node".into()];
        argv.extend(args.iter().map(std::ffi::OsString::from));
        with_default_subcommand(argv)
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn flags_alone_mean_join_whatever_their_values_are() {
        // a flag's value named like a subcommand is still a value
        for args in [
            &["--node-name", "reset", "--endpoint", "10.0.0.1:6443"][..],
            &["--endpoint", "10.0.0.1:6443", "--node-name", "status"],
            &["--labels", "discover=yes", "--taints", "join=x:NoSchedule"],
            &["--labels=reset", "--node-name", "uninstall"],
            &["-v", "--output", "json", "--node-name", "help"],
            &["--ess", "--node-name-mode", "hostname"],
        ] {
            let got = with_default(args);
            assert_eq!(got[0], "join", "{args:?}");
            assert_eq!(&got[1..], args, "{args:?}");
        }
        // a subcommand named first, or after flags, is left to clap
        for args in [
            &["reset", "--node-name", "join"][..],
            &["status"],
            &["-v", "status"],
            &["--output", "json", "reset"],
            &["--help"],
            &["--version"],
        ] {
            assert_eq!(with_default(args), args, "{args:?}");
        }
        assert_eq!(with_default(&[]), Vec::<String>::new());
    }

    #[test]
    fn flags_alone_parse_as_join() {
        let argv = with_default_subcommand(
            [
                "attach-node",
                "--node-name",
                "reset",
                "--endpoint",
                "10.0.0.1:6443",
            ]
            .map(std::ffi::OsString::from)
            .to_vec(),
        );
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Join(j) => assert_eq!(j.node.node_name.as_deref(), Some("reset")),
            other => panic!("{other:?}"),
        }
    }
}
