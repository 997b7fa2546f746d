//! The real `attach-node discover` binary against the loopback lab: every
//! exit-code path of contract §5 that discovery can take, with no secret in
//! any output at the most verbose log level.

mod support;

use std::time::Duration;

use attach_node_lab::{Fault, Lab, LabConfig, RetryAfter, Server};
use support::{Fixture, write};

fn lab(cfg: LabConfig) -> Fixture {
    Fixture::new(Lab::start(cfg).expect("start the lab"))
}

fn healthy() -> Fixture {
    lab(LabConfig::default())
}

#[test]
fn discovers_through_the_control_plane() {
    let f = healthy();
    let run = f.discover(&[]);
    run.expect(0);
    let out = run.json();
    let api = f.lab.api_server_url();
    assert_eq!(out["clusterName"], "lab");
    assert_eq!(out["endpoint"], api.as_str());
    assert_eq!(out["server"], api.as_str());
    assert_eq!(out["caCertHash"], f.lab.ca_cert_hash().as_str());
    assert_eq!(out["caSubject"], "CN=kubernetes");
    assert!(out["caNotAfter"].as_str().unwrap().ends_with('Z'));
    let id = f.lab.bootstrap_token()[..6].to_owned();
    assert_eq!(out["bootstrapTokenID"], id.as_str());
    assert_eq!(out["kubernetesVersion"], "1.31.4");
    assert_eq!(
        out.as_object().unwrap().len(),
        8,
        "exactly the contract's fields"
    );

    // On the wire: the openapi token only in the header; cluster-info twice,
    // anonymously.
    let reqs = f.lab.requests();
    let cp: Vec<_> = reqs
        .iter()
        .filter(|r| r.server == Server::ControlPlane)
        .collect();
    assert_eq!(cp.len(), 1);
    assert_eq!(cp[0].target, "/v1/node-attach");
    let header = |r: &attach_node_lab::Request, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header(cp[0], "authorization"),
        Some(format!("Bearer {}", f.lab.openapi_token()))
    );
    assert!(
        header(cp[0], "user-agent")
            .unwrap()
            .starts_with("attach-node/")
    );
    let ci: Vec<_> = reqs
        .iter()
        .filter(|r| r.server == Server::ApiServer)
        .collect();
    assert_eq!(
        ci.len(),
        2,
        "one unverified fetch and one verified re-fetch"
    );
    for r in ci {
        assert_eq!(
            r.target,
            "/api/v1/namespaces/kube-public/configmaps/cluster-info"
        );
        assert_eq!(
            header(r, "authorization"),
            None,
            "cluster-info is fetched anonymously"
        );
    }
    for r in &reqs {
        assert!(!r.target.contains(&f.lab.openapi_token()));
    }
}

#[test]
fn text_output_is_a_short_summary() {
    let f = healthy();
    let run = f.discover(&["--output", "text"]);
    run.expect(0);
    assert!(run.stdout.contains("CN=kubernetes"));
    assert!(run.stdout.contains(&f.lab.ca_cert_hash()));
    assert!(run.stdout.contains("(matches a given pin)"));
}

#[test]
fn discovers_directly_with_endpoint_token_and_pin() {
    let f = healthy();
    let api = f.lab.api_server_url();
    let pin = f.lab.ca_cert_hash();
    let tok = f.path("bootstrap-token");
    let run = f.run(
        &[
            "discover",
            "--endpoint",
            &api,
            "--token-file",
            &tok,
            "--ca-cert-hash",
            &pin,
        ],
        &[],
        None,
    );
    run.expect(0);
    assert_eq!(run.json()["clusterName"], serde_json::Value::Null);
    assert_eq!(run.json()["caCertHash"], pin.as_str());
}

#[test]
fn endpoints_are_tried_in_order() {
    let f = healthy();
    let dead = dead_endpoint();
    let api = f.lab.api_server_url();
    let tok = f.path("bootstrap-token");
    let run = f.run(
        &[
            "discover",
            "--endpoint",
            &dead,
            "--endpoint",
            &api,
            "--token-file",
            &tok,
        ],
        &[],
        None,
    );
    run.expect(0).stderr_has("no CA pin");
    assert_eq!(run.json()["endpoint"], api.as_str());
}

#[test]
fn bare_host_port_endpoint_is_accepted_like_attach_node_sh() {
    let f = healthy();
    let api = f.lab.api_server_url();
    let bare = api.trim_start_matches("https://");
    let tok = f.path("bootstrap-token");
    f.run(
        &["discover", "--endpoint", bare, "--token-file", &tok],
        &[],
        None,
    )
    .expect(0);
}

#[test]
fn tokens_from_environment_and_stdin() {
    let f = healthy();
    let cp = f.lab.control_plane_url();
    let ca = f.path("control-plane-ca.pem");
    let token = f.lab.openapi_token();
    let run = f.run(
        &["discover"],
        &[
            ("ATTACH_NODE_CONTROL_PLANE", &cp),
            ("ATTACH_NODE_CONTROL_PLANE_CA", &ca),
            ("ATTACH_NODE_OPENAPI_TOKEN", &token),
        ],
        None,
    );
    run.expect(0);
    assert!(!run.stderr.contains("command line"));
    let run = f.run(
        &[
            "discover",
            "--control-plane",
            &cp,
            "--control-plane-ca",
            &ca,
            "--openapi-token-file",
            "-",
        ],
        &[],
        Some(&format!("{token}\n")),
    );
    run.expect(0);
}

/// `ATTACH_NODE_OPENAPI_TOKEN_FILE` and `ATTACH_NODE_TOKEN_FILE` name a file
/// holding the token, so a unit's EnvironmentFile need not carry it (systemd
/// gives those variables to every command of the unit); setting both a
/// variable and its `_FILE` is refused rather than guessed at.
#[test]
fn token_files_named_in_the_environment() {
    let f = healthy();
    let cp = f.lab.control_plane_url();
    let ca = f.path("control-plane-ca.pem");
    let tok = f.path("openapi-token");
    let env = [
        ("ATTACH_NODE_CONTROL_PLANE", cp.as_str()),
        ("ATTACH_NODE_CONTROL_PLANE_CA", ca.as_str()),
        ("ATTACH_NODE_OPENAPI_TOKEN_FILE", tok.as_str()),
    ];
    let run = f.run(&["discover"], &env, None);
    run.expect(0);
    assert!(!run.stderr.contains("command line"));

    let api = f.lab.api_server_url();
    let bt = f.path("bootstrap-token");
    f.run(
        &["discover", "--endpoint", &api],
        &[("ATTACH_NODE_TOKEN_FILE", &bt)],
        None,
    )
    .expect(0);

    let token = f.lab.openapi_token();
    let mut both = env.to_vec();
    both.push(("ATTACH_NODE_OPENAPI_TOKEN", &token));
    f.run(&["discover"], &both, None)
        .expect(2)
        .stderr_has("ATTACH_NODE_OPENAPI_TOKEN and ATTACH_NODE_OPENAPI_TOKEN_FILE are both set");
    let missing = f.path("no-such-token");
    f.run(
        &["discover"],
        &[
            ("ATTACH_NODE_CONTROL_PLANE", cp.as_str()),
            ("ATTACH_NODE_OPENAPI_TOKEN_FILE", missing.as_str()),
        ],
        None,
    )
    .expect(2)
    .stderr_has("no-such-token");
}

#[test]
fn a_token_in_argv_is_warned_about() {
    let f = healthy();
    let cp = f.lab.control_plane_url();
    let ca = f.path("control-plane-ca.pem");
    let token = f.lab.openapi_token();
    // The token is on our own command line here, so only check the output
    // for the masked form and the warning.
    let run = support::run(
        &[
            "discover",
            "--control-plane",
            &cp,
            "--control-plane-ca",
            &ca,
            "--openapi-token",
            &token,
        ],
        &[],
        None,
        &[],
    );
    run.expect(0).stderr_has("command line");
    assert!(!run.stderr.contains(&token));
}

#[test]
fn config_file_keys_are_long_flag_names() {
    let f = healthy();
    let cfg = format!(
        "control-plane: {}\ncontrol-plane-ca: {}\nopenapi-token-file: {}\ntimeout: 30s\noutput: text\n",
        f.lab.control_plane_url(),
        f.path("control-plane-ca.pem"),
        f.path("openapi-token")
    );
    let p = write(f.dir.path(), "config.yaml", &cfg);
    let run = f.run(&["discover", "--config", p.to_str().unwrap()], &[], None);
    run.expect(0);
    assert!(run.stdout.starts_with("cluster "));
    // flags beat the file
    let run = f.run(
        &[
            "discover",
            "--config",
            p.to_str().unwrap(),
            "--output",
            "json",
        ],
        &[],
        None,
    );
    run.expect(0).json();

    let bad = write(
        f.dir.path(),
        "bad.yaml",
        "control-plane: https://x\nsurprise: 1\n",
    );
    f.run(&["discover", "--config", bad.to_str().unwrap()], &[], None)
        .expect(2)
        .stderr_has("surprise");
}

#[test]
fn openapi_token_rejections_are_exit_3() {
    let f = lab(LabConfig::default());
    let cp = f.lab.control_plane_url();
    let ca = f.path("control-plane-ca.pem");
    for token in ["no-such-token".to_owned(), f.lab.expired_openapi_token()] {
        let tf = write(f.dir.path(), "t", &token);
        f.run(
            &[
                "discover",
                "--control-plane",
                &cp,
                "--control-plane-ca",
                &ca,
                "--openapi-token-file",
                tf.to_str().unwrap(),
            ],
            &[],
            None,
        )
        .expect(3)
        .stderr_has("rejected the openapi token");
    }
    let once = write(f.dir.path(), "once", &f.lab.single_use_openapi_token());
    let args = [
        "discover",
        "--control-plane",
        &cp,
        "--control-plane-ca",
        &ca,
        "--openapi-token-file",
        once.to_str().unwrap(),
    ];
    f.run(&args, &[], None).expect(0);
    f.run(&args, &[], None).expect(3).stderr_has("already used");
    // final statuses are not retried
    let n = f
        .lab
        .requests()
        .iter()
        .filter(|r| r.server == Server::ControlPlane)
        .count();
    assert_eq!(n, 4);
}

#[test]
fn unusable_control_plane_answers_are_exit_3() {
    for (fault, needle) in [
        (Fault::ControlPlaneOversized, "larger than"),
        (Fault::ControlPlaneNotSchema, "bootstrapToken"),
        (Fault::ControlPlaneStatus(418), "418"),
        (Fault::ControlPlaneStatus(400), "400"),
    ] {
        let f = lab(LabConfig::default().fault(fault));
        f.discover(&[]).expect(3).stderr_has(needle);
    }
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let f = lab(
        LabConfig::default().fault(Fault::ControlPlaneTooManyRequests {
            times: 2,
            retry_after: RetryAfter::Seconds(1),
        }),
    );
    f.discover(&[]).expect(0).stderr_has("429");
    assert_eq!(
        f.lab
            .requests()
            .iter()
            .filter(|r| r.server == Server::ControlPlane)
            .count(),
        3
    );

    let f = lab(
        LabConfig::default().fault(Fault::ControlPlaneTooManyRequests {
            times: 1,
            retry_after: RetryAfter::HttpDate(Duration::from_secs(1)),
        }),
    );
    f.discover(&[]).expect(0);

    for status in [500, 502, 503, 504, 408] {
        let f =
            lab(LabConfig::default().fault(Fault::ControlPlaneServerError { times: 2, status }));
        f.discover(&[]).expect(0);
        assert_eq!(
            f.lab
                .requests()
                .iter()
                .filter(|r| r.server == Server::ControlPlane)
                .count(),
            3
        );
    }

    let f = lab(LabConfig::default().fault(Fault::ApiServerError {
        times: 2,
        status: 503,
    }));
    f.discover(&[]).expect(0);
}

#[test]
fn the_deadline_is_exit_5() {
    let f = lab(LabConfig::default().fault(Fault::ControlPlaneServerError {
        times: 10_000,
        status: 503,
    }));
    f.discover(&["--timeout", "2s"])
        .expect(5)
        .stderr_has("gave up");

    let f = lab(LabConfig::default().fault(Fault::ControlPlaneSlow(Duration::from_secs(20))));
    f.discover(&["--timeout", "1s"]).expect(5);

    // a Retry-After beyond the deadline ends the work at once
    let f = lab(
        LabConfig::default().fault(Fault::ControlPlaneTooManyRequests {
            times: 10,
            retry_after: RetryAfter::Seconds(3600),
        }),
    );
    f.discover(&["--timeout", "30s"])
        .expect(5)
        .stderr_has("past the deadline");
    assert_eq!(f.lab.requests().len(), 1);

    let f = lab(LabConfig::default().fault(Fault::ApiServerError {
        times: 10_000,
        status: 503,
    }));
    f.discover(&["--timeout", "2s"]).expect(5);
}

#[test]
fn unreachable_servers_are_exit_5() {
    let f = healthy();
    let dead = dead_endpoint();
    let ca = f.path("control-plane-ca.pem");
    let tok = f.path("openapi-token");
    f.run(
        &[
            "discover",
            "--control-plane",
            &dead,
            "--control-plane-ca",
            &ca,
            "--openapi-token-file",
            &tok,
            "--timeout",
            "1s",
        ],
        &[],
        None,
    )
    .expect(5)
    .stderr_has("cannot connect");
    let bt = f.path("bootstrap-token");
    f.run(
        &[
            "discover",
            "--endpoint",
            &dead,
            "--token-file",
            &bt,
            "--timeout",
            "1s",
        ],
        &[],
        None,
    )
    .expect(5);
}

/// A name that does not resolve is said so, with the fix, not as the
/// resolver's dump of its query. (`.invalid` never resolves, and the
/// resolver says so itself, RFC 6761 §6.4: no network is needed.)
#[test]
fn a_name_that_does_not_resolve_is_exit_5_naming_it() {
    let f = healthy();
    let ca = f.path("control-plane-ca.pem");
    let tok = f.path("openapi-token");
    let bt = f.path("bootstrap-token");
    for args in [
        [
            "--control-plane",
            "https://cp.nonexistent.invalid",
            "--control-plane-ca",
            &ca,
            "--openapi-token-file",
            &tok,
        ],
        [
            "--endpoint",
            "api.nonexistent.invalid:6443",
            "--token-file",
            &bt,
            "--ca-cert-hash",
            &f.lab.ca_cert_hash(),
        ],
    ] {
        let mut argv = vec!["discover", "--timeout", "1s"];
        argv.extend(args);
        let run = f.run(&argv, &[], None);
        run.expect(5)
            .stderr_has("nonexistent.invalid: ")
            .stderr_has("cannot resolve ")
            .stderr_has("/etc/resolv.conf");
        // (the resolver's own debug lines, at -vv, may say more)
        let error = run
            .stderr
            .lines()
            .find(|l| l.starts_with("attach-node: error:"))
            .unwrap();
        assert!(!error.contains("Query"), "{error}");
    }
}

#[test]
fn trust_failures_are_exit_4() {
    for (fault, needle) in [
        (Fault::TamperedJws, "does not match the bootstrap token"),
        (Fault::NoSignatureForToken, "no signature for token id"),
        (Fault::CaNotCa, "not a CA"),
        (Fault::CaExpired, "expired"),
        (
            Fault::DifferentCertAfterTrust,
            "did not prove itself with the cluster CA",
        ),
        (Fault::ClusterInfoChanged, "changed between"),
    ] {
        let f = lab(LabConfig::default().fault(fault));
        f.discover(&["--timeout", "3s"])
            .expect(4)
            .stderr_has(needle);
    }
}

#[test]
fn an_unverifiable_control_plane_is_exit_4_and_not_retried() {
    let f = healthy();
    let cp = f.lab.control_plane_url();
    let tok = f.path("openapi-token");
    // without --control-plane-ca the lab's private CA is unknown
    f.run(
        &[
            "discover",
            "--control-plane",
            &cp,
            "--openapi-token-file",
            &tok,
        ],
        &[],
        None,
    )
    .expect(4)
    .stderr_has("--control-plane-ca");
    assert!(
        f.lab.requests().is_empty(),
        "nothing was sent over the failed handshake"
    );
}

#[test]
fn pins_are_enforced() {
    let f = healthy();
    let wrong = format!("sha256:{}", "ab".repeat(32));
    f.discover(&["--ca-cert-hash", &wrong])
        .expect(4)
        .stderr_has("matches none of the pinned hashes");
    // any of several pins may match; the user's pins replace the control plane's
    let right = f
        .lab
        .ca_cert_hash()
        .to_uppercase()
        .replacen("SHA256", "sha256", 1);
    f.discover(&["--ca-cert-hash", &wrong, "--ca-cert-hash", &right])
        .expect(0);
    f.discover(&["--ca-cert-hash", "sha256:abc"])
        .expect(2)
        .stderr_has("64 hex digits");
    f.discover(&["--ca-cert-hash", "md5:abc"]).expect(2);
}

#[test]
fn usage_errors_are_exit_2() {
    let f = healthy();
    let tok = f.path("openapi-token");
    let ca = f.path("control-plane-ca.pem");
    let http_cp = f.lab.control_plane_url().replace("https://", "http://");
    f.run(
        &[
            "discover",
            "--control-plane",
            &http_cp,
            "--openapi-token-file",
            &tok,
        ],
        &[],
        None,
    )
    .expect(2)
    .stderr_has("--insecure-control-plane");
    f.run(&["discover", "--openapi-token-file", &tok], &[], None)
        .expect(2)
        .stderr_has("no control plane");
    f.run(&["discover"], &[], None)
        .expect(2)
        .stderr_has("nothing to discover");
    f.run(&["discover", "--no-such-flag"], &[], None).expect(2);
    f.discover(&["--disk-device", "/dev/vdb"])
        .expect(2)
        .stderr_has("never formats");
    f.discover(&["--auto-fdisk"])
        .expect(2)
        .stderr_has("never formats");
    f.discover(&["--timeout", "soon"]).expect(2);
    f.discover(&["--timeout", "0s"]).expect(2);
    let bad = write(f.dir.path(), "bad-token", "ABCDEF.0123456789abcdef");
    let api = f.lab.api_server_url();
    f.run(
        &[
            "discover",
            "--endpoint",
            &api,
            "--token-file",
            bad.to_str().unwrap(),
        ],
        &[],
        None,
    )
    .expect(2)
    .stderr_has("malformed");
    f.run(
        &[
            "discover",
            "--endpoint",
            "http://127.0.0.1:1",
            "--token-file",
            bad.to_str().unwrap(),
        ],
        &[],
        None,
    )
    .expect(2);
    let _ = ca;
}

#[test]
fn attach_node_sh_runtime_flags_are_warned_and_ignored() {
    let f = healthy();
    f.discover(&[
        "--docker-version",
        "19.03",
        "--runtime",
        "containerd",
        "--runtime-version",
        "1.6",
    ])
    .expect(0)
    .stderr_has("--docker-version is ignored");
}

#[test]
fn help_and_version_change_nothing() {
    let run = support::run(&["--help"], &[], None, &[]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("discover"));
    let run = support::run(&["discover", "--help"], &[], None, &[]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--openapi-token-file"));
    assert!(
        !run.stdout.contains("--disk-device"),
        "refused flags stay hidden"
    );
}

/// A loopback address with nothing listening: bind, note the port, close.
fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("https://127.0.0.1:{port}")
}

#[test]
fn retry_after_zero_does_not_flood_the_server() {
    let f = lab(
        LabConfig::default().fault(Fault::ControlPlaneTooManyRequests {
            times: 100_000,
            retry_after: RetryAfter::Seconds(0),
        }),
    );
    f.discover(&["--timeout", "2s"])
        .expect(5)
        .stderr_has("answered 429");
    // each wait is at least 50 ms, so 2 s allow at most 40 tries
    let n = f.lab.requests().len();
    assert!(n <= 41, "{n} requests in 2 s");
}

#[test]
fn the_last_error_is_the_real_one_not_a_timeout() {
    let f = lab(LabConfig::default().fault(Fault::ControlPlaneServerError {
        times: 100_000,
        status: 503,
    }));
    f.discover(&["--timeout", "2s"])
        .expect(5)
        .stderr_has("answered 503");
}

#[test]
fn an_oversized_cluster_info_is_a_trust_failure() {
    let f = lab(LabConfig::default().fault(Fault::ApiServerOversized));
    f.discover(&[]).expect(4).stderr_has("larger than");
}

#[test]
fn a_config_file_error_never_quotes_a_token() {
    let f = healthy();
    for text in [
        format!("token: {}\nbogus: 1\n", f.lab.bootstrap_token()),
        format!(
            "{{\"token\": \"{}\", \"verbose\": \"x\"}}\n",
            f.lab.bootstrap_token()
        ),
        format!(
            "openapi-token: {}\nendpoint: [1, {{x: 2}}]\n",
            f.lab.openapi_token()
        ),
        // a token pasted as a key: "unknown field" would quote it
        format!("{}: x\n", f.lab.bootstrap_token()),
        format!("\"{}\": x\n", f.lab.bootstrap_token()),
    ] {
        let p = write(f.dir.path(), "leaky.yaml", &text);
        // Fixture::run fails the test if any secret reaches the output.
        f.run(&["discover", "--config", p.to_str().unwrap()], &[], None)
            .expect(2);
    }
}

#[test]
fn token_files_may_end_with_a_newline() {
    let f = healthy();
    let api = f.lab.api_server_url();
    let tok = write(
        f.dir.path(),
        "nl-token",
        &format!("{}\n", f.lab.bootstrap_token()),
    );
    f.run(
        &[
            "discover",
            "--endpoint",
            &api,
            "--token-file",
            tok.to_str().unwrap(),
        ],
        &[],
        None,
    )
    .expect(0);
    f.run(
        &["discover", "--endpoint", &api, "--token-file", "-"],
        &[],
        Some(&format!("{}\r\n", f.lab.bootstrap_token())),
    )
    .expect(0);
}

#[test]
fn unusable_endpoints_and_deadlines_are_refused_at_once() {
    let f = healthy();
    let tok = f.path("bootstrap-token");
    for bad in [
        "https://[zz]:6443",
        "exa mple:6443",
        "https://::1",
        "https://h",
    ] {
        f.run(
            &["discover", "--endpoint", bad, "--token-file", &tok],
            &[],
            None,
        )
        .expect(2)
        .stderr_has("--endpoint");
    }
    f.discover(&["--timeout", "18446744073709551615"]).expect(2);
    f.discover(&["--timeout", "25h"])
        .expect(2)
        .stderr_has("at most 24h");
}

#[test]
fn an_endpoint_refusing_anonymous_reads_does_not_stop_the_next() {
    for status in [401, 403] {
        let refusing = lab(LabConfig::default().fault(Fault::ApiServerError {
            times: 1_000,
            status,
        }));
        let f = healthy();
        let first = refusing.lab.api_server_url();
        let api = f.lab.api_server_url();
        let tok = f.path("bootstrap-token");
        let run = f.run(
            &[
                "discover",
                "--endpoint",
                &first,
                "--endpoint",
                &api,
                "--token-file",
                &tok,
            ],
            &[],
            None,
        );
        run.expect(0).stderr_has("trying the next endpoint");
        assert_eq!(run.json()["endpoint"], api.as_str());
        // every endpoint refusing is still final, with the first one's word
        f.run(
            &[
                "discover",
                "--endpoint",
                &first,
                "--endpoint",
                &first,
                "--token-file",
                &tok,
            ],
            &[],
            None,
        )
        .expect(4)
        .stderr_has(&format!("refused cluster-info with status {status}"));
    }
}

#[test]
fn a_ca_not_valid_yet_is_waited_out_then_exit_4_naming_the_clock() {
    let f = lab(LabConfig::default().fault(Fault::CaNotYetValid));
    let run = f.discover(&["--timeout", "3s"]);
    run.expect(4)
        .stderr_has("is not valid before 2100-01-01T00:00:00Z, and this host's clock says")
        .stderr_has("retrying in")
        .stderr_has("gave up after")
        .stderr_has("time synchronisation");
}
