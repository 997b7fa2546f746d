//! The fleet harness with SIMULATED kubeadm agents (the real attach-node
//! agents are in the root package's tests/fleet.rs, which has the binary):
//! a small burst against an API server that admits two requests at a time.
//! Every agent must succeed; nothing here depends on how long it took.

use std::time::Duration;

use attach_node_bench::{self as fleet, Burst, Fleet, Policy};

const AGENTS: usize = 20;

fn burst(policy: Policy) -> fleet::Report {
    let scratch =
        std::env::temp_dir().join(format!("attach-node-lab-fleet-{}", std::process::id()));
    let report = fleet::run(&Burst {
        agents: AGENTS,
        api_max_in_flight: 2,
        api_latency: Duration::from_millis(20),
        scratch: scratch.clone(),
        fleet: Fleet::Simulated {
            program: env!("CARGO_BIN_EXE_attach-node-fleet").into(),
            policy,
        },
    })
    .unwrap();
    let _ = std::fs::remove_dir(&scratch);
    report
}

fn check(r: &fleet::Report) {
    assert_eq!(r.succeeded, AGENTS, "failures: {:?}", r.failure_samples);
    assert!(r.failure_samples.is_empty());
    assert!(r.simulated);
    // One control-plane request each (it has no admission limit), and the
    // API server answered each agent's four reads once: cluster-info twice
    // and kubelet-config (200), its Node (404, not registered).
    assert_eq!(r.control_plane.total, AGENTS as u64);
    assert_eq!(r.api_server.ok, 3 * AGENTS as u64);
    assert_eq!(r.api_server.not_found, AGENTS as u64);
    assert_eq!(r.api_server.other, 0);
    // Every 429 was retried, and nothing else was.
    assert_eq!(r.client_retries, r.api_server.too_many_requests);
    assert!(r.last_success.is_some());
    let table = fleet::markdown_table(&[vec![r.clone()]]);
    assert!(table.contains("(simulated)"), "{table}");
}

#[test]
fn simulated_kubeadm_fleet_all_join() {
    // A short poll interval keeps the test quick; the policy is the same.
    check(&burst(Policy::Kubeadm {
        interval: Duration::from_millis(200),
    }));
}

#[test]
fn simulated_kubeadm_client_go_fleet_all_join() {
    check(&burst(Policy::KubeadmClientGo {
        interval: Duration::from_millis(200),
    }));
}
