//! The failures a lab can inject, and how a list of them becomes settings
//! for each server.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::pki::CaFlaw;

/// One failure to inject. Faults combine: give several to
/// [`LabConfig::fault`](crate::LabConfig::fault). Where two faults set the
/// same thing (say `CaNotCa` and `CaExpired`), the later one wins; counted
/// faults of one server are used up one after the other, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    // --- control plane, GET /v1/node-attach ---
    /// The first `times` requests get 429 with this `Retry-After`, later
    /// ones are answered normally.
    ControlPlaneTooManyRequests { times: u32, retry_after: RetryAfter },
    /// The first `times` requests get `status` (a 5xx), without
    /// `Retry-After`.
    ControlPlaneServerError { times: u32, status: u16 },
    /// Every request gets this status with a JSON error body, whatever its
    /// token.
    ControlPlaneStatus(u16),
    /// Wait this long before answering each request.
    ControlPlaneSlow(Duration),
    /// 200 with a well-formed ClusterInfo padded to about 2 MiB, over the
    /// client's 1 MiB limit.
    ControlPlaneOversized,
    /// 200 with JSON that lacks `bootstrapToken`.
    ControlPlaneNotSchema,

    // --- API server ---
    /// The first `times` cluster-info GETs get `status` (a 5xx) with a
    /// metav1.Status body.
    ApiServerError { times: u32, status: u16 },
    /// Wait this long before answering each API-server request (after the
    /// admission check, so slow requests count as in flight).
    ApiServerSlow(Duration),
    /// Every artifact is served with one byte more, so its sha256 no
    /// longer matches ClusterInfo's.
    ArtifactCorrupted,
    /// cluster-info is served padded to about 2 MiB (an extra data key),
    /// over the client's 1 MiB limit.
    ApiServerOversized,
    /// `jws-kubeconfig-<id>` is there, but one byte of its MAC is flipped.
    TamperedJws,
    /// No `jws-kubeconfig-<id>` for the lab's token; there is one for
    /// another token id (`zzzzzz`).
    NoSignatureForToken,
    /// The kubeconfig's CA has `basicConstraints CA:false` (same key, so
    /// the pin still matches).
    CaNotCa,
    /// The kubeconfig's CA expired on 2001-01-01 (same key, so the pin
    /// still matches).
    CaExpired,
    /// The kubeconfig's CA is valid from 2100-01-01 only (same key), as a
    /// host whose clock is far behind sees it.
    CaNotYetValid,
    /// The API server's first TLS handshake presents the real serving
    /// certificate; every later one a certificate with the same SANs from
    /// an impostor CA (subject `CN=kubernetes`, different key).
    DifferentCertAfterTrust,
    /// The first cluster-info served holds kubeconfig A, later ones
    /// kubeconfig B (A plus `preferences: {}`), each correctly signed.
    ClusterInfoChanged,

    // --- API server, TLS bootstrap ---
    /// CSRs are created (201) but never approved or signed, as when the
    /// `kubeadm:node-autoapprove-bootstrap` binding is missing: a kubelet
    /// waits for its certificate until it gives up.
    CsrNeverApproved,
}

/// The `Retry-After` header of an injected 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <n>`.
    Seconds(u64),
    /// `Retry-After: <IMF-fixdate>`, this long after the response is made
    /// (rounded up to the next whole second, the resolution of the format).
    HttpDate(Duration),
    /// No `Retry-After` header.
    None,
}

/// What the cluster-info ConfigMap's signature looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signature {
    Valid,
    Tampered,
    OtherTokenOnly,
}

/// A transient answer of the control plane.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Transient {
    TooManyRequests(RetryAfter),
    ServerError(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ControlPlaneBody {
    Normal,
    Oversized,
    NotSchema,
}

/// The faults sorted by what they change.
pub(crate) struct Plan {
    pub cp_transients: Vec<(u32, Transient)>,
    pub cp_status: Option<u16>,
    pub cp_slow: Option<Duration>,
    pub cp_body: ControlPlaneBody,
    pub api_errors: Vec<(u32, u16)>,
    pub api_slow: Option<Duration>,
    pub api_oversized: bool,
    pub artifact_corrupted: bool,
    pub signature: Signature,
    pub ca_flaw: CaFlaw,
    pub impostor: bool,
    pub cluster_info_changes: bool,
    pub csr_never_approved: bool,
}

impl Plan {
    pub fn new(faults: &[Fault]) -> Plan {
        let mut plan = Plan {
            cp_transients: Vec::new(),
            cp_status: None,
            cp_slow: None,
            cp_body: ControlPlaneBody::Normal,
            api_errors: Vec::new(),
            api_slow: None,
            api_oversized: false,
            artifact_corrupted: false,
            signature: Signature::Valid,
            ca_flaw: CaFlaw::None,
            impostor: false,
            cluster_info_changes: false,
            csr_never_approved: false,
        };
        for fault in faults {
            match *fault {
                Fault::ControlPlaneTooManyRequests { times, retry_after } => plan
                    .cp_transients
                    .push((times, Transient::TooManyRequests(retry_after))),
                Fault::ControlPlaneServerError { times, status } => plan
                    .cp_transients
                    .push((times, Transient::ServerError(status))),
                Fault::ControlPlaneStatus(status) => plan.cp_status = Some(status),
                Fault::ControlPlaneSlow(d) => plan.cp_slow = Some(d),
                Fault::ControlPlaneOversized => plan.cp_body = ControlPlaneBody::Oversized,
                Fault::ControlPlaneNotSchema => plan.cp_body = ControlPlaneBody::NotSchema,
                Fault::ApiServerError { times, status } => plan.api_errors.push((times, status)),
                Fault::ApiServerSlow(d) => plan.api_slow = Some(d),
                Fault::ApiServerOversized => plan.api_oversized = true,
                Fault::ArtifactCorrupted => plan.artifact_corrupted = true,
                Fault::TamperedJws => plan.signature = Signature::Tampered,
                Fault::NoSignatureForToken => plan.signature = Signature::OtherTokenOnly,
                Fault::CaNotCa => plan.ca_flaw = CaFlaw::NotCa,
                Fault::CaExpired => plan.ca_flaw = CaFlaw::Expired,
                Fault::CaNotYetValid => plan.ca_flaw = CaFlaw::NotYetValid,
                Fault::DifferentCertAfterTrust => plan.impostor = true,
                Fault::ClusterInfoChanged => plan.cluster_info_changes = true,
                Fault::CsrNeverApproved => plan.csr_never_approved = true,
            }
        }
        plan
    }
}

/// Counted faults, used up in order: each call hands out the first one with
/// uses left.
pub(crate) struct Countdown<T> {
    left: Mutex<Vec<(u32, T)>>,
}

impl<T: Copy> Countdown<T> {
    pub fn new(items: Vec<(u32, T)>) -> Countdown<T> {
        Countdown {
            left: Mutex::new(items),
        }
    }

    pub fn take(&self) -> Option<T> {
        let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        let (times, item) = left.iter_mut().find(|(times, _)| *times > 0)?;
        *times -= 1;
        Some(*item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_run_in_order() {
        let c = Countdown::new(vec![(2, 'a'), (0, 'x'), (1, 'b')]);
        let got: Vec<_> = std::iter::from_fn(|| c.take()).collect();
        assert_eq!(got, ['a', 'a', 'b']);
        assert_eq!(c.take(), None);
    }

    #[test]
    fn later_faults_win() {
        let plan = Plan::new(&[Fault::CaNotCa, Fault::CaExpired, Fault::TamperedJws]);
        assert_eq!(plan.ca_flaw, CaFlaw::Expired);
        assert_eq!(plan.signature, Signature::Tampered);
        assert!(!plan.impostor);
    }
}
