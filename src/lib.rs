//! attach-node: turn a plain Linux VM into a Kubernetes worker node, and take
//! it out again.
//!
//! The binary (`src/main.rs`) only parses argv, dispatches and maps errors to
//! exit codes; everything else lives here so it can be tested without a
//! process. The flow is data first: settings are resolved once
//! ([`settings`]), the control plane's answer is parsed strictly
//! ([`clusterinfo`]), and the cluster CA is verified from the bootstrap token
//! ([`trust`], [`discovery`]) before anything is trusted.

pub mod apply;
pub mod artifacts;
pub mod cli;
pub mod clusterinfo;
pub mod commands;
pub mod controlplane;
pub mod discovery;
pub mod duration;
pub mod error;
pub mod host;
pub mod http;
pub mod journal;
pub mod kube;
pub mod labels;
pub mod logging;
pub mod names;
pub mod plan;
pub mod preflight;
pub mod retry;
pub mod secret;
pub mod settings;
pub mod tls;
pub mod trust;
pub mod wait;

pub use error::{Class, Error, Result};
