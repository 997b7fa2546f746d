//! A small fleet burst of real `attach-node join --root` processes against
//! the lab, whose API server admits two requests at a time (429 with
//! `Retry-After: 1` beyond): bench/fleet.sh's harness at CI size. Every
//! agent must join; nothing here depends on how long it took.

use std::time::Duration;

use attach_node_bench::{self as fleet, Burst, Fleet};

const AGENTS: usize = 20;

#[test]
fn a_burst_of_agents_all_join_through_the_admission_limit() {
    let scratch = tempfile::tempdir().unwrap();
    let r = fleet::run(&Burst {
        agents: AGENTS,
        api_max_in_flight: 2,
        api_latency: Duration::from_millis(20),
        scratch: scratch.path().to_owned(),
        fleet: Fleet::AttachNode {
            binary: env!("CARGO_BIN_EXE_attach-node").into(),
        },
    })
    .unwrap();
    assert_eq!(r.succeeded, AGENTS, "failures: {:?}", r.failure_samples);
    assert!(!r.simulated);
    // Each join: one control-plane request, and four API-server reads
    // answered (cluster-info twice, kubelet-config, its Node: 404).
    assert_eq!(r.control_plane.total, AGENTS as u64);
    assert_eq!(r.api_server.ok, 3 * AGENTS as u64);
    assert_eq!(r.api_server.not_found, AGENTS as u64);
    assert_eq!(r.api_server.other, 0);
    // Every 429 an agent got, it logged and retried.
    assert!(r.client_retries >= r.api_server.too_many_requests);
    // The run directory (roots, logs, lab files) is gone.
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}
