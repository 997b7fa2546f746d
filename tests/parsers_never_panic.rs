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
