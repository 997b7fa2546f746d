//! `attach-node discover`: resolve and verify only, change nothing, print
//! the verified facts (contract §4).

use std::time::Instant;

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::clusterinfo::ClusterInfo;
use crate::controlplane;
use crate::discovery::{self, TrustedCluster};
use crate::error::{Error, Result};
use crate::retry::Backoff;
use crate::settings::{ClusterSource, DiscoverSettings, Source};

/// The JSON object `discover` prints; field names are part of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    pub cluster_name: Option<String>,
    pub endpoint: String,
    pub server: String,
    pub ca_cert_hash: String,
    pub ca_subject: String,
    pub ca_not_after: String,
    #[serde(rename = "bootstrapTokenID")]
    pub bootstrap_token_id: String,
    pub kubernetes_version: Option<String>,
}

impl Discovered {
    pub fn new(source: &ClusterSource, trusted: &TrustedCluster) -> Self {
        let ca = trusted.verified.primary_ca(&source.pins);
        Discovered {
            cluster_name: source.cluster_name.clone(),
            endpoint: trusted.endpoint.base_url(),
            server: trusted.verified.server.base_url(),
            ca_cert_hash: ca.pin.to_string(),
            ca_subject: ca.subject.clone(),
            ca_not_after: ca.not_after.clone(),
            bootstrap_token_id: source.token.id().to_owned(),
            kubernetes_version: source.kubernetes_version.clone(),
        }
    }

    pub fn render(&self, format: OutputFormat, pinned: bool) -> String {
        match format {
            OutputFormat::Json => {
                let mut s = serde_json::to_string_pretty(self).expect("plain data serialises");
                s.push('\n');
                s
            }
            OutputFormat::Text => {
                let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
                format!(
                    "cluster      {}\n\
                     kubernetes   {}\n\
                     endpoint     {}\n\
                     server       {}\n\
                     CA           {} (valid until {})\n\
                     CA pin       {}{}\n\
                     token id     {}\n\
                     verified     cluster-info signed by the bootstrap token; \
                     re-fetched over TLS verified by the CA: identical\n",
                    dash(&self.cluster_name),
                    dash(&self.kubernetes_version),
                    self.endpoint,
                    self.server,
                    self.ca_subject,
                    self.ca_not_after,
                    self.ca_cert_hash,
                    if pinned {
                        " (matches a given pin)"
                    } else {
                        " (not pinned)"
                    },
                    self.bootstrap_token_id,
                )
            }
        }
    }
}

/// A cluster resolved and verified.
pub struct Resolved {
    /// The control plane's ClusterInfo, when there was a control plane: a
    /// join needs its node settings.
    pub cluster_info: Option<ClusterInfo>,
    /// The control plane's answer as it came, when the openapi token was
    /// traded in this run (not when a kept answer served): a join keeps it.
    pub traded: Option<zeroize::Zeroizing<Vec<u8>>>,
    pub source: ClusterSource,
    pub trusted: TrustedCluster,
}

/// Resolves the cluster source (asking the control plane when there is an
/// openapi token), then discovers and verifies it.
///
/// `kept` is a ClusterInfo an earlier join on this host received and kept
/// (the token may have been single-use, so trading it again would fail):
/// it is tried first, and the openapi token is traded only when the cluster
/// no longer accepts it.
pub fn discover_cluster(
    settings: &DiscoverSettings,
    deadline: Instant,
    kept: Option<&[u8]>,
) -> Result<Resolved> {
    let backoff = Backoff::default();
    let cp = match &settings.source {
        Source::ControlPlane(cp) => cp,
        Source::Direct => {
            let source = ClusterSource::direct(&settings.overrides)?;
            let trusted = discovery::discover(&source, deadline, backoff)?;
            return Ok(Resolved {
                cluster_info: None,
                traded: None,
                source,
                trusted,
            });
        }
    };
    let mut kept_failed = None;
    if let Some(kept) = kept {
        match verify(kept, settings, deadline, backoff) {
            Ok((cluster_info, source, trusted)) => {
                tracing::info!(
                    "resuming with the ClusterInfo kept from the earlier join: the openapi token \
                     is not traded again"
                );
                return Ok(Resolved {
                    cluster_info: Some(cluster_info),
                    traded: None,
                    source,
                    trusted,
                });
            }
            Err(e) => {
                tracing::warn!(
                    "the ClusterInfo kept from the earlier join no longer serves ({}); trading \
                     the openapi token for a new one",
                    e.message()
                );
                kept_failed = Some(e);
            }
        }
    }
    let answer = controlplane::resolve(cp, deadline, backoff).map_err(|e| match &kept_failed {
        Some(kept) if e.class() == crate::error::Class::Rejected => Error::rejected(format!(
            "the bootstrap token kept from the earlier join is no longer accepted ({}), and {}",
            kept.message(),
            e.message()
        ))
        .hint(
            "a new openapi token is needed: ask the control plane for one and pass it with \
             --openapi-token-file (or ATTACH_NODE_OPENAPI_TOKEN_FILE); the join resumes \
             where it stopped",
        ),
        _ => e,
    })?;
    tracing::info!(
        "control plane answered for cluster {}",
        answer
            .cluster_info
            .cluster_name
            .as_deref()
            .unwrap_or("(unnamed)")
    );
    let source = ClusterSource::from_cluster_info(&answer.cluster_info, &settings.overrides)?;
    let trusted = discovery::discover(&source, deadline, backoff)?;
    Ok(Resolved {
        cluster_info: Some(answer.cluster_info),
        traded: Some(answer.raw),
        source,
        trusted,
    })
}

/// Parses a kept ClusterInfo and verifies the cluster with it, as though
/// the control plane had just sent it.
fn verify(
    kept: &[u8],
    settings: &DiscoverSettings,
    deadline: Instant,
    backoff: Backoff,
) -> Result<(ClusterInfo, ClusterSource, TrustedCluster)> {
    let ci = crate::clusterinfo::parse(kept)
        .map_err(|e| Error::rejected(format!("the kept ClusterInfo is not valid: {e}")))?;
    let source = ClusterSource::from_cluster_info(&ci, &settings.overrides)?;
    let trusted = discovery::discover(&source, deadline, backoff)?;
    Ok((ci, source, trusted))
}

pub fn run(settings: &DiscoverSettings) -> Result<String> {
    let deadline = Instant::now() + settings.timeout;
    let Resolved {
        source, trusted, ..
    } = discover_cluster(settings, deadline, None)?;
    let out = Discovered::new(&source, &trusted);
    Ok(out.render(settings.output, !source.pins.is_empty()))
}
