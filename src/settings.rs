//! Settings, resolved once: built-in defaults < ClusterInfo < config file <
//! environment < flags (contract §4). This is the only module that reads the
//! environment, the config file or token files; everything downstream gets
//! validated, read-only values.
//!
//! Resolution has two steps because ClusterInfo arrives over the network:
//! [`resolve_discover`] builds everything the user said, and
//! [`ClusterSource::from_cluster_info`] lays the control plane's answer
//! underneath it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::apply::Faults;
use crate::cli::{
    CommonArgs, DiscoverArgs, HostArgs, JoinArgs, LegacyArgs, NodeArgs, OutputFormat, ResetArgs,
    SourceArgs, StatusArgs,
};
use crate::clusterinfo::ClusterInfo;
use crate::clusterinfo::{NameSource, Taint};
use crate::error::{Error, Result};
use crate::host::Root;
use crate::secret::{BootstrapToken, OpenapiToken, Origin};
use crate::trust::kubeconfig::ServerUrl;
use crate::trust::pin::CaPin;
use zeroize::Zeroizing;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// A deadline beyond a day is a typo, not a plan.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Token files and config files are small; a cap keeps `-` on a pipe that
/// never ends from reading forever.
const SMALL_FILE_CAP: u64 = 64 * 1024;

/// What the process may read from outside argv: the environment and standard
/// input. Injected so resolution is a pure function in tests.
pub struct Outside<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub stdin: &'a mut dyn Read,
}

/// How much the log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub verbosity: Verbosity,
    /// journald stamps lines itself; elsewhere we do.
    pub timestamps: bool,
}

/// Settings of `discover`.
#[derive(Debug)]
pub struct DiscoverSettings {
    pub source: Source,
    /// What the user said about the cluster; beats ClusterInfo.
    pub overrides: ClusterOverrides,
    pub timeout: Duration,
    pub output: OutputFormat,
    pub log: LogSettings,
    /// Warnings found while resolving, logged once logging is up.
    pub notices: Vec<String>,
}

#[derive(Debug)]
pub enum Source {
    /// Trade an openapi token for ClusterInfo.
    ControlPlane(ControlPlane),
    /// Endpoints and bootstrap token given directly (in `overrides`).
    Direct,
}

#[derive(Debug)]
pub struct ControlPlane {
    /// Base URL without a trailing slash.
    pub url: String,
    pub extra_ca_pem: Option<Vec<u8>>,
    pub token: OpenapiToken,
}

#[derive(Debug, Default)]
pub struct ClusterOverrides {
    pub endpoints: Option<Vec<ServerUrl>>,
    pub token: Option<BootstrapToken>,
    pub pins: Option<Vec<CaPin>>,
}

/// The cluster to discover: user overrides laid over ClusterInfo.
#[derive(Debug)]
pub struct ClusterSource {
    pub cluster_name: Option<String>,
    pub kubernetes_version: Option<String>,
    pub endpoints: Vec<ServerUrl>,
    pub token: BootstrapToken,
    pub pins: Vec<CaPin>,
}

impl ClusterSource {
    /// ClusterInfo below, the user's overrides above it.
    pub fn from_cluster_info(ci: &ClusterInfo, user: &ClusterOverrides) -> Result<Self> {
        let endpoints = match &user.endpoints {
            Some(e) => e.clone(),
            None => ci
                .api_server_endpoints
                .iter()
                .map(|e| ServerUrl::parse(e.as_str()).map_err(Error::rejected))
                .collect::<Result<_>>()?,
        };
        Ok(ClusterSource {
            cluster_name: ci.cluster_name.clone(),
            kubernetes_version: ci.kubernetes_version.clone(),
            endpoints,
            token: user
                .token
                .clone()
                .unwrap_or_else(|| ci.bootstrap_token.clone()),
            pins: user
                .pins
                .clone()
                .unwrap_or_else(|| ci.ca_cert_hashes.clone()),
        })
    }

    /// Without a control plane everything comes from the user.
    pub fn direct(user: &ClusterOverrides) -> Result<Self> {
        let missing = |what: &str| {
            Error::usage(format!("no {what} was given"))
                .hint("give --openapi-token-file (with --control-plane), or both --endpoint and --token-file")
        };
        Ok(ClusterSource {
            cluster_name: None,
            kubernetes_version: None,
            endpoints: user
                .endpoints
                .clone()
                .ok_or_else(|| missing("API server endpoint (--endpoint)"))?,
            token: user
                .token
                .clone()
                .ok_or_else(|| missing("bootstrap token (--token-file)"))?,
            pins: user.pins.clone().unwrap_or_default(),
        })
    }
}

/// A config file: keys are the long flag names.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConfigFile {
    control_plane: Option<String>,
    control_plane_ca: Option<PathBuf>,
    insecure_control_plane: Option<bool>,
    openapi_token: Option<String>,
    openapi_token_file: Option<PathBuf>,
    endpoint: Option<OneOrMany>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_cert_hash: Option<OneOrMany>,
    timeout: Option<String>,
    output: Option<OutputFormat>,
    verbose: Option<u8>,
    // join
    node_name: Option<String>,
    labels: Option<String>,
    taints: Option<String>,
    cluster_dns: Option<OneOrMany>,
    node_config: Option<String>,
    ess: Option<bool>,
    node_name_mode: Option<String>,
    root: Option<PathBuf>,
    force: Option<bool>,
    wait: Option<crate::wait::Wait>,
    wait_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Resolves `discover`'s settings.
pub fn resolve_discover(args: &DiscoverArgs, outside: Outside<'_>) -> Result<DiscoverSettings> {
    let mut r = Resolver::new(&args.common, outside)?;
    r.discover(&args.source, &args.common, &args.legacy, OutputFormat::Json)
}

/// Settings of `join`: discovery's, plus what the node is and where it goes.
#[derive(Debug)]
pub struct JoinSettings {
    pub discover: DiscoverSettings,
    pub root: Root,
    pub dry_run: bool,
    pub force: bool,
    pub node: NodeOverrides,
    pub wait: crate::wait::Wait,
    pub wait_timeout: Duration,
    pub faults: Faults,
}

/// What the user said about the node; laid over ClusterInfo's `node`.
#[derive(Debug, Default)]
pub struct NodeOverrides {
    pub name: Option<String>,
    pub name_source: Option<NameSource>,
    /// How the user asked for `name_source`, for messages: `--node-name-mode
    /// nodeip`, or the config file's `node-name-mode`.
    pub name_source_origin: Option<String>,
    pub labels: Vec<(String, String)>,
    /// Where `labels` came from, for messages: `--labels`, or the config
    /// file's `labels` (empty: `--labels`).
    pub labels_origin: String,
    pub taints: Vec<Taint>,
    /// Where `taints` came from, as `labels_origin`.
    pub taints_origin: String,
    pub cluster_dns: Option<Vec<std::net::IpAddr>>,
    /// attach_node.sh's `--node-config` kubelet_config.
    pub kubelet_config: Option<serde_json::Map<String, serde_json::Value>>,
    /// `--ess` (only ever true) or the config file's `ess`; None leaves it
    /// to ClusterInfo's `autoscaler`.
    pub autoscaler: Option<bool>,
}

impl NodeOverrides {
    /// The layer name of the user's labels in messages.
    pub fn labels_layer(&self) -> &str {
        match self.labels_origin.as_str() {
            "" => "--labels",
            o => o,
        }
    }

    /// The layer name of the user's taints in messages.
    pub fn taints_layer(&self) -> &str {
        match self.taints_origin.as_str() {
            "" => "--taints",
            o => o,
        }
    }
}

pub fn resolve_join(args: &JoinArgs, outside: Outside<'_>) -> Result<JoinSettings> {
    let mut r = Resolver::new(&args.common, outside)?;
    let discover = r.discover(&args.source, &args.common, &args.legacy, OutputFormat::Text)?;
    let node = r.node(&args.node)?;
    Ok(JoinSettings {
        discover,
        root: r.root(&args.host)?,
        dry_run: args.host.dry_run,
        force: args.force || r.file.force.unwrap_or(false),
        node,
        wait: args
            .wait
            .or(r.file.wait)
            .unwrap_or(crate::wait::Wait::Registered),
        wait_timeout: match args
            .wait_timeout
            .clone()
            .or_else(|| r.file.wait_timeout.clone())
        {
            None => crate::wait::DEFAULT_TIMEOUT,
            Some(raw) => match crate::duration::parse(&raw) {
                Ok(d) if !d.is_zero() && d <= MAX_TIMEOUT => d,
                Ok(_) => {
                    return Err(Error::usage(
                        "--wait-timeout must be longer than zero and at most 24h",
                    ));
                }
                Err(e) => return Err(Error::usage(format!("--wait-timeout: {e}"))),
            },
        },
        faults: r.faults(),
    })
}

/// Settings of `reset`.
#[derive(Debug)]
pub struct ResetSettings {
    pub root: Root,
    pub dry_run: bool,
    pub force: bool,
    pub faults: Faults,
    pub output: OutputFormat,
    pub log: LogSettings,
    pub notices: Vec<String>,
}

pub fn resolve_reset(args: &ResetArgs, outside: Outside<'_>) -> Result<ResetSettings> {
    let r = Resolver::new(&args.common, outside)?;
    Ok(ResetSettings {
        root: r.root(&args.host)?,
        dry_run: args.host.dry_run,
        force: args.force,
        faults: r.faults(),
        output: r.output(&args.common, OutputFormat::Text),
        log: r.log(&args.common)?,
        notices: r.notices,
    })
}

/// Settings of `status`.
#[derive(Debug)]
pub struct StatusSettings {
    pub root: Root,
    pub output: OutputFormat,
    pub log: LogSettings,
}

pub fn resolve_status(args: &StatusArgs, outside: Outside<'_>) -> Result<StatusSettings> {
    let r = Resolver::new(&args.common, outside)?;
    let host = HostArgs {
        root: args.root.clone(),
        dry_run: false,
    };
    Ok(StatusSettings {
        root: r.root(&host)?,
        output: r.output(&args.common, OutputFormat::Text),
        log: r.log(&args.common)?,
    })
}

/// attach_node.sh flags: disk formatting is refused outright (it destroyed
/// data when re-run), runtime choices are warned about and ignored.
fn check_legacy(legacy: &LegacyArgs, notices: &mut Vec<String>) -> Result<()> {
    if legacy.disk_device.is_some() || legacy.auto_fdisk.is_some() {
        let flag = if legacy.disk_device.is_some() {
            "--disk-device"
        } else {
            "--auto-fdisk"
        };
        return Err(Error::usage(format!(
            "{flag} is refused: attach-node never formats or mounts disks, because attach_node.sh's \
             disk formatting destroyed data and failed on re-runs"
        ))
        .hint("prepare data disks before the join, e.g. with cloud-init's disk_setup, fs_setup and mounts"));
    }
    for (flag, given) in [
        ("--docker-version", &legacy.docker_version),
        ("--runtime", &legacy.runtime),
        ("--runtime-version", &legacy.runtime_version),
    ] {
        if given.is_some() {
            notices.push(format!(
                "{flag} is ignored: attach-node configures the host's containerd and installs no other runtime"
            ));
        }
    }
    Ok(())
}

/// Walks the layers for one command.
struct Resolver<'a> {
    file: ConfigFile,
    file_path: Option<PathBuf>,
    env: &'a dyn Fn(&str) -> Option<String>,
    stdin: &'a mut dyn Read,
    stdin_used: bool,
    notices: Vec<String>,
}

impl<'a> Resolver<'a> {
    fn new(common: &CommonArgs, outside: Outside<'a>) -> Result<Self> {
        // An empty variable counts as unset, as `VAR= cmd` is how shells unset.
        let env = outside.env;
        let file_path = common.config.clone().or_else(|| {
            env("ATTACH_NODE_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let mut notices = Vec::new();
        let file = match &file_path {
            Some(p) => read_config(p, &mut notices)?,
            None => ConfigFile::default(),
        };
        Ok(Resolver {
            file,
            file_path,
            env,
            stdin: outside.stdin,
            stdin_used: false,
            notices,
        })
    }

    fn env(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.trim().is_empty())
    }

    fn discover(
        &mut self,
        source: &SourceArgs,
        common: &CommonArgs,
        legacy: &LegacyArgs,
        default_output: OutputFormat,
    ) -> Result<DiscoverSettings> {
        check_legacy(legacy, &mut self.notices)?;
        let src = self.source(source)?;
        let overrides = self.overrides(source)?;
        if matches!(src, Source::Direct)
            && overrides.endpoints.is_none()
            && overrides.token.is_none()
        {
            return Err(Error::usage(
                "nothing to discover: no openapi token and no endpoint or bootstrap token",
            )
            .hint(
                "give --control-plane and --openapi-token-file, or --endpoint and --token-file",
            ));
        }
        Ok(DiscoverSettings {
            source: src,
            overrides,
            timeout: self.timeout(common)?,
            output: self.output(common, default_output),
            log: self.log(common)?,
            notices: std::mem::take(&mut self.notices),
        })
    }

    /// Flags, then the config file, then the command's own default.
    fn output(&self, common: &CommonArgs, default: OutputFormat) -> OutputFormat {
        common.output.or(self.file.output).unwrap_or(default)
    }

    fn root(&self, host: &HostArgs) -> Result<Root> {
        match host.root.clone().or_else(|| self.file.root.clone()) {
            // Canonical, so that `--root /tmp/..` or a link to / is seen
            // for what it is: the live host.
            Some(dir) => std::fs::canonicalize(&dir).map(Root::at).map_err(|e| {
                Error::usage(format!("--root {}: {e}", dir.display()))
                    .hint("the root directory must exist")
            }),
            None => Ok(Root::host()),
        }
    }

    /// How a message names a value from the config file.
    fn file_key(&self, key: &str) -> String {
        format!("the config file {}'s {key}", self.config_name())
    }

    /// A flag's value, else the config file's, with where it came from.
    fn flag_or_file(
        &self,
        flag: &str,
        given: &Option<String>,
        key: &str,
        file: &Option<String>,
    ) -> (Option<String>, String) {
        match (given, file) {
            (Some(v), _) => (Some(v.clone()), flag.to_owned()),
            (None, Some(v)) => (Some(v.clone()), self.file_key(key)),
            (None, None) => (None, flag.to_owned()),
        }
    }

    fn node(&mut self, a: &NodeArgs) -> Result<NodeOverrides> {
        let (labels, labels_origin) =
            self.flag_or_file("--labels", &a.labels, "labels", &self.file.labels);
        let labels = match labels {
            Some(spec) => crate::labels::parse_label_list(&spec)
                .map_err(|e| Error::usage(format!("{labels_origin}: {e}")))?,
            None => Vec::new(),
        };
        let (taints, taints_origin) =
            self.flag_or_file("--taints", &a.taints, "taints", &self.file.taints);
        let taints = match taints {
            Some(spec) => crate::labels::parse_taint_list(&spec)
                .map_err(|e| Error::usage(format!("{taints_origin}: {e}")))?,
            None => Vec::new(),
        };
        let dns: Vec<String> = if !a.cluster_dns.is_empty() {
            a.cluster_dns.clone()
        } else {
            self.file
                .cluster_dns
                .take()
                .map(OneOrMany::into_vec)
                .unwrap_or_default()
        };
        let cluster_dns = if dns.is_empty() {
            None
        } else {
            Some(
                dns.iter()
                    .flat_map(|d| d.split(','))
                    .map(|d| {
                        d.trim().parse().map_err(|_| {
                            Error::usage(format!("--cluster-dns: {d:?} is not an IP address"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            )
        };
        let node_config = a
            .node_config
            .clone()
            .or_else(|| self.file.node_config.clone());
        let kubelet_config = node_config.map(|b| node_config_kubelet(&b)).transpose()?;
        let (mode, mode_origin) = self.flag_or_file(
            "--node-name-mode",
            &a.node_name_mode,
            "node-name-mode",
            &self.file.node_name_mode,
        );
        let name_source = mode
            .map(|m| {
                let source = match m.as_str() {
                    "hostname" => NameSource::Hostname,
                    "nodeip" | "private-ip" => NameSource::PrivateIp,
                    "instance-id" => NameSource::InstanceId,
                    other => {
                        return Err(Error::usage(format!(
                            "{mode_origin}: {other:?}: use hostname, nodeip (private-ip) or instance-id"
                        )));
                    }
                };
                // How it was said, for messages: `--node-name-mode nodeip`.
                Ok((source, format!("{mode_origin} {m}")))
            })
            .transpose()?;
        let name = a
            .node_name
            .clone()
            .or_else(|| self.file.node_name.clone())
            .map(|n| n.trim().to_ascii_lowercase());
        Ok(NodeOverrides {
            name,
            name_source: name_source.as_ref().map(|(source, _)| *source),
            name_source_origin: name_source.map(|(_, said)| said),
            labels,
            labels_origin,
            taints,
            taints_origin,
            cluster_dns,
            kubelet_config,
            autoscaler: if a.ess { Some(true) } else { self.file.ess },
        })
    }

    /// Test-only fault points, read only in debug builds: a release binary
    /// has no way to be told to crash.
    fn faults(&self) -> Faults {
        if !cfg!(debug_assertions) {
            return Faults::default();
        }
        let num = |name: &str| self.env(name).and_then(|v| v.trim().parse().ok());
        Faults {
            crash_at: num("ATTACH_NODE_TEST_CRASH_AT"),
            fail_at: num("ATTACH_NODE_TEST_FAIL_AT"),
        }
    }

    fn config_name(&self) -> String {
        self.file_path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn source(&mut self, a: &SourceArgs) -> Result<Source> {
        let token = self.secret(
            "openapi token",
            (a.openapi_token.as_deref(), a.openapi_token_file.as_deref()),
            "ATTACH_NODE_OPENAPI_TOKEN",
            (
                self.file.openapi_token.clone(),
                self.file.openapi_token_file.clone(),
            ),
        )?;
        let url = a
            .control_plane
            .clone()
            .or_else(|| self.env("ATTACH_NODE_CONTROL_PLANE"))
            .or_else(|| self.file.control_plane.clone());
        let Some((raw, origin)) = token else {
            if url.is_some() {
                self.notices.push(
                    "a control plane is set but no openapi token was given; it is not used".into(),
                );
            }
            return Ok(Source::Direct);
        };
        let url = url.ok_or_else(|| {
            Error::usage("an openapi token was given but no control plane to resolve it")
                .hint("give --control-plane https://... (or ATTACH_NODE_CONTROL_PLANE)")
        })?;
        let insecure =
            a.insecure_control_plane || self.file.insecure_control_plane.unwrap_or(false);
        let url = control_plane_url(&url, insecure, &mut self.notices)?;
        let token = OpenapiToken::parse(&raw)
            .map_err(|e| Error::usage(format!("{e} (read from {origin})")))?;
        let ca_path = a
            .control_plane_ca
            .clone()
            .or_else(|| self.env("ATTACH_NODE_CONTROL_PLANE_CA").map(PathBuf::from))
            .or_else(|| self.file.control_plane_ca.clone());
        let extra_ca_pem = ca_path
            .map(|p| {
                std::fs::read(&p).map_err(|e| {
                    Error::usage(format!(
                        "cannot read the control-plane CA bundle {}: {e}",
                        p.display()
                    ))
                })
            })
            .transpose()?;
        Ok(Source::ControlPlane(ControlPlane {
            url,
            extra_ca_pem,
            token,
        }))
    }

    fn overrides(&mut self, a: &SourceArgs) -> Result<ClusterOverrides> {
        let endpoints = if !a.endpoint.is_empty() {
            Some(a.endpoint.clone())
        } else if let Some(v) = self.env("ATTACH_NODE_ENDPOINT") {
            Some(
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        } else {
            self.file.endpoint.take().map(OneOrMany::into_vec)
        };
        let endpoints = endpoints
            .map(|list| list.iter().map(|e| endpoint(e)).collect::<Result<Vec<_>>>())
            .transpose()?;

        let token = self
            .secret(
                "bootstrap token",
                (a.token.as_deref(), a.token_file.as_deref()),
                "ATTACH_NODE_TOKEN",
                (self.file.token.clone(), self.file.token_file.clone()),
            )?
            .map(|(raw, origin)| {
                // `echo TOKEN > file` leaves a newline; nothing else is trimmed.
                BootstrapToken::parse(raw.trim_end_matches(['\n', '\r'])).map_err(|e| {
                    Error::usage(format!(
                        "the bootstrap token from {origin} is malformed: {e}"
                    ))
                })
            })
            .transpose()?;

        let pins = if !a.ca_cert_hash.is_empty() {
            Some(a.ca_cert_hash.clone())
        } else {
            self.file.ca_cert_hash.take().map(OneOrMany::into_vec)
        };
        let pins = pins
            .map(|list| {
                list.iter()
                    .map(|p| {
                        CaPin::parse(p).map_err(|e| Error::usage(format!("--ca-cert-hash: {e}")))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        Ok(ClusterOverrides {
            endpoints,
            token,
            pins,
        })
    }

    /// A secret from, in order: its flag or its file flag, the environment,
    /// the config file's value or file. Records where it came from and warns
    /// when that place is readable by others.
    fn secret(
        &mut self,
        what: &str,
        flags: (Option<&str>, Option<&Path>),
        env_name: &str,
        file: (Option<String>, Option<PathBuf>),
    ) -> Result<Option<(Zeroizing<String>, Origin)>> {
        let flag_name = if what == "openapi token" {
            "--openapi-token"
        } else {
            "--token"
        };
        match flags {
            (Some(_), Some(_)) => {
                return Err(Error::usage(format!(
                    "{flag_name} and {flag_name}-file were both given; give one"
                )));
            }
            (Some(v), None) => {
                self.notices.push(format!(
                    "the {what} was given on the command line, where every user of this host can read it \
                     (ps, /proc); prefer {flag_name}-file or {env_name}"
                ));
                return Ok(Some((Zeroizing::new(v.to_owned()), Origin::Argv)));
            }
            (None, Some(p)) => return self.read_secret_file(what, p).map(Some),
            (None, None) => {}
        }
        // `<NAME>_FILE` names a file holding the secret, so that a unit's
        // EnvironmentFile can point at the token without carrying it: systemd
        // hands EnvironmentFile's variables to every command of the unit.
        let file_env = format!("{env_name}_FILE");
        match (self.env(env_name), self.env(&file_env)) {
            (Some(_), Some(_)) => {
                return Err(Error::usage(format!(
                    "{env_name} and {file_env} are both set; set one"
                )));
            }
            (Some(v), None) => return Ok(Some((Zeroizing::new(v), Origin::Environment))),
            (None, Some(p)) => return self.read_secret_file(what, Path::new(&p)).map(Some),
            (None, None) => {}
        }
        match file {
            (Some(_), Some(_)) => Err(Error::usage(format!(
                "the config file {} sets both {} and {}-file; keep one",
                self.config_name(),
                &flag_name[2..],
                &flag_name[2..]
            ))),
            (Some(v), None) => Ok(Some((Zeroizing::new(v), Origin::ConfigFile))),
            (None, Some(p)) => self.read_secret_file(what, &p).map(Some),
            (None, None) => Ok(None),
        }
    }

    fn read_secret_file(&mut self, what: &str, path: &Path) -> Result<(Zeroizing<String>, Origin)> {
        if path == Path::new("-") {
            if self.stdin_used {
                return Err(Error::usage(
                    "standard input can supply only one secret; read the other from a file",
                ));
            }
            self.stdin_used = true;
            // Room for all of it up front: a buffer that grew would leave
            // an unwiped copy behind in the one it replaced.
            let mut s = Zeroizing::new(String::with_capacity(SMALL_FILE_CAP as usize + 1));
            self.stdin
                .take(SMALL_FILE_CAP)
                .read_to_string(&mut s)
                .map_err(|e| {
                    Error::usage(format!("cannot read the {what} from standard input: {e}"))
                })?;
            return Ok((s, Origin::Stdin));
        }
        warn_if_readable_by_others(path, what, &mut self.notices);
        let s = read_small(path).map_err(|e| {
            Error::usage(format!(
                "cannot read the {what} from {}: {e}",
                path.display()
            ))
        })?;
        Ok((s, Origin::File))
    }

    fn timeout(&self, common: &CommonArgs) -> Result<Duration> {
        let raw = common.timeout.clone().or_else(|| self.file.timeout.clone());
        let Some(raw) = raw else {
            return Ok(DEFAULT_TIMEOUT);
        };
        let d =
            crate::duration::parse(&raw).map_err(|e| Error::usage(format!("--timeout: {e}")))?;
        if d.is_zero() || d > MAX_TIMEOUT {
            return Err(Error::usage(format!(
                "--timeout must be longer than zero and at most {}h",
                MAX_TIMEOUT.as_secs() / 3600
            )));
        }
        Ok(d)
    }

    fn log(&self, common: &CommonArgs) -> Result<LogSettings> {
        let from_count = |n: u8| match n {
            0 => Verbosity::Info,
            1 => Verbosity::Debug,
            _ => Verbosity::Trace,
        };
        let verbosity = if common.verbose > 0 {
            from_count(common.verbose)
        } else if let Some(v) = self.env("ATTACH_NODE_LOG") {
            match v.trim().to_ascii_lowercase().as_str() {
                "error" | "warn" | "info" | "0" => Verbosity::Info,
                "debug" | "1" => Verbosity::Debug,
                "trace" | "2" => Verbosity::Trace,
                other => {
                    return Err(Error::usage(format!(
                        "ATTACH_NODE_LOG={other:?} is not a log level; use info, debug or trace"
                    )));
                }
            }
        } else {
            from_count(self.file.verbose.unwrap_or(0))
        };
        Ok(LogSettings {
            verbosity,
            timestamps: (self.env)("JOURNAL_STREAM").is_none(),
        })
    }
}

/// attach_node.sh's `--node-config`: base64 of `{"kubelet_config":{...}}`.
fn node_config_kubelet(b64: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let bad = |why: String| {
        Error::usage(format!("--node-config: {why}"))
            .hint("it is base64 of a JSON object such as {\"kubelet_config\":{\"maxPods\":110}}")
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    match v.get("kubelet_config") {
        Some(serde_json::Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(bad("kubelet_config is not an object".into())),
        None => Err(bad("it has no kubelet_config".into())),
    }
}

fn read_small(path: &Path) -> std::io::Result<Zeroizing<String>> {
    let mut s = Zeroizing::new(String::with_capacity(SMALL_FILE_CAP as usize + 1));
    std::fs::File::open(path)?
        .take(SMALL_FILE_CAP)
        .read_to_string(&mut s)?;
    Ok(s)
}

fn warn_if_readable_by_others(path: &Path, what: &str, notices: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        notices.push(format!(
            "{} holds the {what} but other users can read it (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
}

fn read_config(path: &Path, notices: &mut Vec<String>) -> Result<ConfigFile> {
    let text = read_small(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    let cfg = parse_config(path, &text)?;
    if cfg.openapi_token.is_some() || cfg.token.is_some() {
        warn_if_readable_by_others(path, "a token", notices);
    }
    Ok(cfg)
}

fn parse_config(path: &Path, text: &str) -> Result<ConfigFile> {
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_saphyr::from_str(text).map_err(|e| {
        Error::usage(format!(
            "the config file {} is not valid: {}",
            path.display(),
            config_error_text(&e, text)
        ))
        .hint("its keys are the long flag names, e.g. `control-plane: https://...`")
    })
}

/// The config file parser without the file, for the fuzz targets and the
/// corpus replay (fuzz/): `Ok` when the text is a valid config file.
#[doc(hidden)]
pub fn check_config_text(text: &str) -> Result<()> {
    parse_config(Path::new("config.yaml"), text).map(drop)
}

/// The `--node-config` parser, for the fuzz targets and the corpus replay.
#[doc(hidden)]
pub fn parse_node_config(b64: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    node_config_kubelet(b64)
}

/// A config parse error without the parser's source snippet (which would
/// quote the file, tokens included), and with any token-looking value of
/// the file masked in case the message itself quotes one.
fn config_error_text(e: &serde_saphyr::Error, text: &str) -> String {
    let options = serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let mut msg = e.render_with_options(options);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'', '{', ',', ' ', '-']);
        // A key is a flag's long name; anything else may be a secret
        // pasted in the wrong place (`abcdef.0123456789abcdef: x`), which
        // the parser's "unknown field" would quote.
        let flag_like = key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !flag_like && key.len() >= 4 {
            msg = msg.replace(key, "****");
        }
        if key.ends_with("token") {
            let value = value.trim().trim_matches(['"', '\'', ',', '}', ' ']);
            if value.len() >= 4 {
                msg = msg.replace(value, "****");
            }
        }
    }
    msg
}

/// Validates the control plane's URL: https, or http with the insecure flag.
fn control_plane_url(raw: &str, insecure: bool, notices: &mut Vec<String>) -> Result<String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        if !insecure {
            return Err(Error::usage(format!(
                "the control plane {url} is plain http: the openapi token would cross the network unencrypted"
            ))
            .hint("use an https:// control plane, or pass --insecure-control-plane if you accept the risk"));
        }
        notices.push(format!(
            "the control plane {url} is plain http (--insecure-control-plane): the openapi token is sent unencrypted"
        ));
        rest
    } else {
        return Err(Error::usage(format!(
            "the control plane {raw:?} is not an https:// URL"
        )));
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || rest.contains(['?', '#', ' ']) {
        return Err(Error::usage(format!(
            "the control plane {raw:?} must look like https://host[:port][/path], without user info, query or fragment"
        )));
    }
    Ok(url.to_owned())
}

/// An API server endpoint: `https://host:port`, or attach_node.sh's bare
/// `host:port`; held to ClusterInfo's endpoint rules, so a host that no
/// client could reach is refused now rather than retried until the deadline.
fn endpoint(raw: &str) -> Result<ServerUrl> {
    let raw = raw.trim();
    if raw.starts_with("http://") {
        return Err(Error::usage(format!(
            "the endpoint {raw} is plain http; API servers are reached over https"
        )));
    }
    let url = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    };
    crate::clusterinfo::Endpoint::parse(&url)
        .map_err(|e| Error::usage(format!("--endpoint {raw:?}: {e}")))?;
    ServerUrl::parse(&url).map_err(|e| Error::usage(format!("--endpoint: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_plane_urls() {
        let mut n = Vec::new();
        assert_eq!(
            control_plane_url("https://cp.example/", false, &mut n).unwrap(),
            "https://cp.example"
        );
        assert_eq!(
            control_plane_url("https://cp:8443/x", false, &mut n).unwrap(),
            "https://cp:8443/x"
        );
        let e = control_plane_url("http://cp", false, &mut n).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(n.is_empty());
        assert_eq!(
            control_plane_url("http://cp", true, &mut n).unwrap(),
            "http://cp"
        );
        assert_eq!(n.len(), 1);
        for bad in [
            "cp.example",
            "ftp://x",
            "https://",
            "https://u:p@cp",
            "https://cp?x=1",
        ] {
            assert!(control_plane_url(bad, true, &mut n).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_accept_attach_node_sh_form() {
        assert_eq!(
            endpoint("10.0.0.1:6443").unwrap().base_url(),
            "https://10.0.0.1:6443"
        );
        assert_eq!(
            endpoint("https://[::1]:6443").unwrap().base_url(),
            "https://[::1]:6443"
        );
        assert!(endpoint("http://10.0.0.1:6443").is_err());
        assert!(endpoint("https://10.0.0.1:6443/x").is_err());
    }
}
