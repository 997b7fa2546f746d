//! Property tests: no parser panics, whatever it is fed. Each one reads
//! input from the network, a file or a flag.

use attach_node::secret::{BootstrapToken, OpenapiToken};
use attach_node::trust::kubeconfig::{ServerUrl, cluster_from_kubeconfig};
use attach_node::trust::pin::CaPin;
use attach_node::trust::{ca, jws};
use proptest::prelude::*;
use time::OffsetDateTime;

fn token() -> BootstrapToken {
    BootstrapToken::parse("abcdef.0123456789abcdef").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tokens(s in "\\PC{0,40}") {
        let _ = BootstrapToken::parse(&s);
        let _ = OpenapiToken::parse(&s);
    }

    #[test]
    fn token_shaped(s in "[a-z0-9A-Z.]{6}\\.[a-z0-9.]{14,18}") {
        if let Ok(t) = BootstrapToken::parse(&s) {
            prop_assert_eq!(format!("{t}"), format!("{}.****", &s[..6]));
        }
    }

    #[test]
    fn pins(s in "(sha256|SHA256|md5)?:?[0-9a-fA-Fz ]{0,70}") {
        if let Ok(p) = CaPin::parse(&s) {
            // a parsed pin prints canonically and parses back to itself
            prop_assert_eq!(CaPin::parse(&p.to_string()), Ok(p));
        }
    }

    #[test]
    fn server_urls(s in "(https?://)?[\\[\\]a-z0-9.:/@?#-]{0,40}") {
        if let Ok(u) = ServerUrl::parse(&s) {
            prop_assert!(u.port > 0);
            prop_assert_eq!(ServerUrl::parse(&u.base_url()), Ok(u.clone()));
        }
    }

    #[test]
    fn jws_verify(content in proptest::collection::vec(any::<u8>(), 0..256), sig in "\\PC{0,100}") {
        prop_assert!(!jws::verify(&content, &sig, &token()) || sig == jws::detached_signature(&content, "abcdef", b"0123456789abcdef"));
    }

    #[test]
    fn kubeconfigs(s in "\\PC{0,400}") {
        let _ = cluster_from_kubeconfig(&s);
    }

    #[test]
    fn kubeconfig_shaped(server in "\\PC{0,30}", data in "[A-Za-z0-9+/=]{0,60}", name in "\\PC{0,8}") {
        let kc = format!("clusters:\n- cluster:\n    certificate-authority-data: {data}\n    server: {server}\n  name: {name:?}\n");
        let _ = cluster_from_kubeconfig(&kc);
    }

    #[test]
    fn configmaps(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = attach_node::trust::verify_cluster_info(&body, &token(), &[], OffsetDateTime::UNIX_EPOCH);
    }

    #[test]
    fn configmap_shaped(kc in "\\PC{0,200}", sig in "\\PC{0,90}") {
        let body = serde_json::json!({"kind":"ConfigMap","data":{"kubeconfig": kc, "jws-kubeconfig-abcdef": sig}});
        let r = attach_node::trust::verify_cluster_info(body.to_string().as_bytes(), &token(), &[], OffsetDateTime::UNIX_EPOCH);
        prop_assert!(r.is_err());
    }

    #[test]
    fn ca_bundles(pem in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ca::check_ca_bundle(&pem, OffsetDateTime::UNIX_EPOCH);
        let _ = ca::pins_of_bundle(&pem);
    }

    #[test]
    fn durations(s in "\\PC{0,20}") {
        let _ = attach_node::duration::parse(&s);
    }

    #[test]
    fn retry_after(s in "\\PC{0,40}") {
        let _ = attach_node::retry::parse_retry_after(&s, std::time::SystemTime::now());
    }
}

/// Settings from arbitrary flag values and config files: an error at worst.
mod settings_inputs {
    use attach_node::cli::{Cli, Command};
    use attach_node::settings::{self, Outside};
    use clap::Parser;
    use proptest::prelude::*;

    fn resolve(args: &[String], config: Option<&str>) {
        let dir = tempfile::tempdir().unwrap();
        let mut argv: Vec<String> = vec!["attach-node".into()];
        argv.extend_from_slice(args);
        if let Some(text) = config {
            let p = dir.path().join("config.yaml");
            std::fs::write(&p, text).unwrap();
            argv.push("--config".into());
            argv.push(p.display().to_string());
        }
        let Ok(cli) = Cli::try_parse_from(&argv) else {
            return;
        };
        let env = |_: &str| None;
        let mut stdin: &[u8] = b"";
        let outside = Outside {
            env: &env,
            stdin: &mut stdin,
        };
        match cli.command {
            Command::Discover(a) => drop(settings::resolve_discover(&a, outside)),
            Command::Join(a) => drop(settings::resolve_join(&a, outside)),
            Command::Reset(a) => drop(settings::resolve_reset(&a, outside)),
            Command::Status(a) => drop(settings::resolve_status(&a, outside)),
            Command::Uninstall(a) => drop(settings::resolve_reset(&a, outside)),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn flag_values(cp in "\\PC{0,30}", ep in "\\PC{0,30}", pin in "\\PC{0,20}", t in "\\PC{0,10}") {
            resolve(&["discover".into(), "--control-plane".into(), cp, "--openapi-token-file".into(), "-".into(),
                      "--endpoint".into(), ep, "--ca-cert-hash".into(), pin, "--timeout".into(), t], None);
        }

        #[test]
        fn join_flag_values(labels in "\\PC{0,30}", taints in "\\PC{0,30}", dns in "\\PC{0,16}", nc in "\\PC{0,40}", mode in "\\PC{0,10}") {
            resolve(&["join".into(), "--endpoint".into(), "https://h:1".into(), "--token-file".into(), "-".into(),
                      "--labels".into(), labels, "--taints".into(), taints, "--cluster-dns".into(), dns,
                      "--node-config".into(), nc, "--node-name-mode".into(), mode], None);
        }

        #[test]
        fn config_files(text in "\\PC{0,200}") {
            resolve(&["discover".into()], Some(&text));
        }

        #[test]
        fn config_shaped(key in "(control-plane|endpoint|ca-cert-hash|timeout|labels|output|verbose|token)", value in "\\PC{0,40}") {
            resolve(&["join".into()], Some(&format!("{key}: {value}\n")));
        }
    }
}

/// The committed fuzz corpora (fuzz/corpus/<target>/, plus the inputs that
/// once found a defect, tests/corpus/fuzz/<target>/) replayed through the
/// very checks the fuzz targets run, so a regression shows up in a plain
/// `cargo test` without cargo-fuzz. ClusterInfo's schema corpus
/// (tests/corpus/clusterinfo/) goes through its target's checks too.
#[path = "../fuzz/src/lib.rs"]
mod fuzz_checks;

mod fuzz_corpora {
    use super::fuzz_checks as checks;
    use std::path::{Path, PathBuf};

    /// A fuzz target's name and the checks it runs on one input.
    type Target = (&'static str, fn(&[u8]));

    const TARGETS: [Target; 9] = [
        ("clusterinfo", checks::clusterinfo),
        ("kubeconfig", checks::kubeconfig),
        ("jws", checks::jws),
        ("labels", checks::labels),
        ("config", checks::config),
        ("journal", checks::journal),
        ("retry_after", checks::retry_after),
        ("duration", checks::duration),
        ("kubelet_config", checks::kubelet_config),
    ];

    fn files(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        out.sort();
        out
    }

    fn replay(check: fn(&[u8]), inputs: &[PathBuf]) {
        for path in inputs {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails its checks", path.display());
        }
    }

    #[test]
    fn replayed() {
        let top = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (name, check) in TARGETS {
            let corpus = files(&top.join("fuzz/corpus").join(name));
            assert!(!corpus.is_empty(), "fuzz/corpus/{name} is missing or empty");
            replay(check, &corpus);
            replay(check, &files(&top.join("tests/corpus/fuzz").join(name)));
        }
        for kind in ["valid", "invalid"] {
            let schema = files(&top.join("tests/corpus/clusterinfo").join(kind));
            assert!(!schema.is_empty());
            replay(checks::clusterinfo, &schema);
        }
    }
}
