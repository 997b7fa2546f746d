//! `attach-node discover`: resolve and verify only, change nothing, print
//! the verified facts (contract §4).

use std::time::Instant;

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::clusterinfo::ClusterInfo;
use crate::controlplane;
use crate::discovery::{self, TrustedCluster};
use crate::error::Result;
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

/// Resolves the cluster source (asking the control plane when there is an
/// openapi token), then discovers and verifies it. The ClusterInfo, when
/// there was one, comes back too: a join needs its node settings.
pub fn discover_cluster(
    settings: &DiscoverSettings,
    deadline: Instant,
) -> Result<(Option<ClusterInfo>, ClusterSource, TrustedCluster)> {
    let backoff = Backoff::default();
    let (ci, source) = match &settings.source {
        Source::ControlPlane(cp) => {
            let ci = controlplane::resolve(cp, deadline, backoff)?;
            tracing::info!(
                "control plane answered for cluster {}",
                ci.cluster_name.as_deref().unwrap_or("(unnamed)")
            );
            let source = ClusterSource::from_cluster_info(&ci, &settings.overrides)?;
            (Some(ci), source)
        }
        Source::Direct => (None, ClusterSource::direct(&settings.overrides)?),
    };
    let trusted = discovery::discover(&source, deadline, backoff)?;
    Ok((ci, source, trusted))
}

pub fn run(settings: &DiscoverSettings) -> Result<String> {
    let deadline = Instant::now() + settings.timeout;
    let (_, source, trusted) = discover_cluster(settings, deadline)?;
    let out = Discovered::new(&source, &trusted);
    Ok(out.render(settings.output, !source.pins.is_empty()))
}
