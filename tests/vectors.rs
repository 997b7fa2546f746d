//! Every upstream vector in tests/vectors (copied from ../shared/vectors)
//! reproduced by the trust code: JWS, token formats, CA pins, and kubeadm's
//! own cluster-info fixtures verified end to end.

use std::path::PathBuf;

use attach_node::secret::{BootstrapToken, is_token_id};
use attach_node::trust::ca::pins_of_bundle;
use attach_node::trust::pin::{CaPin, matches_any};
use attach_node::trust::{self, Distrust, jws};
use serde_json::{Value, json};
use time::OffsetDateTime;

fn vectors(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn pem(rel: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(rel),
    )
    .unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// A moment inside every fixture CA's validity (2027-01-01).
fn in_validity() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_798_761_600).unwrap()
}

#[test]
fn jws_positive_vectors() {
    let v = vectors("jws.json");
    let list = v["vectors"].as_array().unwrap();
    assert_eq!(list.len(), 19);
    for case in list {
        let (content, id, key) = (
            s(&case["content"]),
            s(&case["token_id"]),
            s(&case["token_secret"]),
        );
        let expected = s(&case["expected"]);
        assert_eq!(
            jws::detached_signature(content.as_bytes(), id, key.as_bytes()),
            expected,
            "{}",
            case["name"]
        );
        assert!(
            jws::verify_raw(content.as_bytes(), expected, id, key.as_bytes()),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn jws_negative_vectors() {
    let v = vectors("jws.json");
    for case in v["negative_vectors"].as_array().unwrap() {
        let ok = jws::verify_raw(
            s(&case["content"]).as_bytes(),
            s(&case["signature"]),
            s(&case["token_id"]),
            s(&case["token_secret"]).as_bytes(),
        );
        assert!(!ok, "{}", case["name"]);
    }
}

#[test]
fn token_formats() {
    let v = vectors("tokens.json");
    for case in v["token_cases"].as_array().unwrap() {
        let t = s(&case["token"]);
        assert_eq!(
            BootstrapToken::parse(t).is_ok(),
            case["valid"].as_bool().unwrap(),
            "{t:?}"
        );
    }
    for case in v["token_id_cases"].as_array().unwrap() {
        let id = s(&case["id"]);
        assert_eq!(is_token_id(id), case["valid"].as_bool().unwrap(), "{id:?}");
    }
    for case in v["token_from_parts_cases"].as_array().unwrap() {
        let t = format!("{}.{}", s(&case["id"]), s(&case["secret"]));
        assert_eq!(
            BootstrapToken::parse(&t).is_ok(),
            case["valid"].as_bool().unwrap(),
            "{t:?}"
        );
    }
}

#[test]
fn pin_parsing() {
    let v = vectors("pins.json");
    for case in v["allow_cases"].as_array().unwrap() {
        let accepted = case["accepted"].as_bool().unwrap();
        let inputs: Vec<&str> = match case.get("input_list") {
            Some(list) => list.as_array().unwrap().iter().map(s).collect(),
            None => vec![s(&case["input"])],
        };
        let parsed: Result<Vec<CaPin>, String> = inputs.iter().map(|i| CaPin::parse(i)).collect();
        assert_eq!(parsed.is_ok(), accepted, "{inputs:?}");
        if let (Ok(pins), Some(canonical)) = (&parsed, case.get("canonical")) {
            assert_eq!(pins[0].to_string(), s(canonical));
        }
        if let Some(n) = case.get("set_size") {
            assert_eq!(parsed.unwrap().len() as u64, n.as_u64().unwrap());
        }
    }
}

#[test]
fn certificate_pins() {
    let v = vectors("pins.json");
    for cert in v["certificates"].as_array().unwrap() {
        let pins = pins_of_bundle(&pem(s(&cert["file"]))).unwrap();
        assert_eq!(pins.len(), 1);
        assert_eq!(pins[0].to_string(), s(&cert["pin"]), "{}", cert["file"]);
    }
    for case in v["check_cases"].as_array().unwrap() {
        let parsed: Result<Vec<CaPin>, String> = case["pins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| CaPin::parse(s(p)))
            .collect();
        if case
            .get("allow_error")
            .is_some_and(|b| b.as_bool() == Some(true))
        {
            assert!(parsed.is_err(), "{case}");
            continue;
        }
        let pins = parsed.unwrap();
        let der = {
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            CertificateDer::from_pem_slice(&pem(s(&case["cert"]))).unwrap()
        };
        let spki = {
            use x509_parser::prelude::{FromDer, X509Certificate};
            X509Certificate::from_der(der.as_ref())
                .unwrap()
                .1
                .public_key()
                .raw
                .to_vec()
        };
        assert_eq!(
            matches_any(&pins, &spki),
            case["match"].as_bool().unwrap(),
            "{case}"
        );
    }
}

fn configmap_body(data: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": "cluster-info", "namespace": "kube-public"},
        "data": data,
    }))
    .unwrap()
}

#[test]
fn kubeadm_dry_run_fixture_end_to_end() {
    let v = vectors("cluster-info.json");
    let fx = &v["upstream_dryrun_fixture"];
    let token = BootstrapToken::parse(s(&fx["token"])).unwrap();
    let pin = CaPin::parse(s(&fx["ca_cert_hash"])).unwrap();
    let variants = fx["variants"].as_object().unwrap();
    assert_eq!(variants.len(), 2);
    for (name, variant) in variants {
        let body = configmap_body(&variant["configmap"]["data"]);
        let verified = trust::verify_cluster_info(&body, &token, &[pin], in_validity())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(verified.server.base_url(), s(&fx["server"]), "{name}");
        assert_eq!(verified.kubeconfig, s(&variant["kubeconfig"]), "{name}");
        assert_eq!(verified.primary_ca(&[pin]).pin, pin);
        assert_eq!(verified.cas[0].subject, "CN=kubernetes");
        assert_eq!(verified.ca_pem, pem(s(&fx["ca_pem_file"])), "{name}");
    }
}

#[test]
fn kubeadm_discovery_unit_test_fixture() {
    let v = vectors("cluster-info.json");
    let fx = &v["upstream_discovery_unit_test"];
    let token = BootstrapToken::parse(s(&fx["token"])).unwrap();
    let pin = CaPin::parse(s(&fx["ca_cert_hash"])).unwrap();
    let kubeconfig = s(&fx["kubeconfig"]);
    let good =
        json!({"kubeconfig": kubeconfig, "jws-kubeconfig-123456": fx["jws-kubeconfig-123456"]});

    // valid, pinned: a named cluster through current-context, a CA with
    // serial number 0 and no trailing newline, a server without a port.
    let ok =
        trust::verify_cluster_info(&configmap_body(&good), &token, &[pin], in_validity()).unwrap();
    assert_eq!(ok.server.base_url(), "https://127.0.0.1:443");
    // valid, unpinned
    assert!(trust::verify_cluster_info(&configmap_body(&good), &token, &[], in_validity()).is_ok());
    // token 'foo.bar'
    assert!(BootstrapToken::parse("foo.bar").is_err());
    // bad signature over 'foo'
    let bad = json!({"kubeconfig": "foo", "jws-kubeconfig-123456": "bar"});
    assert_eq!(
        trust::verify_cluster_info(&configmap_body(&bad), &token, &[], in_validity()).unwrap_err(),
        Distrust::BadSignature
    );
    // no signature for this token id
    let unsigned = json!({"kubeconfig": "foo"});
    assert_eq!(
        trust::verify_cluster_info(&configmap_body(&unsigned), &token, &[], in_validity())
            .unwrap_err(),
        Distrust::NoSignature {
            token_id: "123456".into()
        }
    );
    // CACertHashes ['foo']
    assert!(CaPin::parse("foo").is_err());
}

#[test]
fn generated_fixtures_with_exact_response_bodies() {
    let v = vectors("cluster-info.json");
    let g = &v["generated"];
    let pin = CaPin::parse(s(&g["ca_cert_hash"])).unwrap();
    let variants = g["variants"].as_object().unwrap();
    for (name, variant) in variants {
        for t in g["tokens"].as_array().unwrap() {
            let token = BootstrapToken::parse(s(t)).unwrap();
            let body = s(&variant["response_body"]).as_bytes();
            let verified = trust::verify_cluster_info(body, &token, &[pin], in_validity())
                .unwrap_or_else(|e| panic!("{name} {token}: {e:?}"));
            assert_eq!(verified.server.base_url(), s(&g["server"]));
            assert_eq!(
                verified.kubeconfig.len() as u64,
                variant["kubeconfig_bytes"].as_u64().unwrap()
            );
        }
    }
}

#[test]
fn generated_fixture_failures() {
    let v = vectors("cluster-info.json");
    let g = &v["generated"];
    let variant = &g["variants"]["k8s-1.34-and-later"];
    let token = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
    let pin = CaPin::parse(s(&g["ca_cert_hash"])).unwrap();
    let data = variant["configmap"]["data"].clone();

    // one byte of the kubeconfig changed: the JWS no longer matches
    let mut tampered = data.clone();
    tampered["kubeconfig"] = json!(s(&data["kubeconfig"]).replace("192.0.2.10", "192.0.2.11"));
    assert_eq!(
        trust::verify_cluster_info(&configmap_body(&tampered), &token, &[pin], in_validity())
            .unwrap_err(),
        Distrust::BadSignature
    );
    // the right secret under another id
    let other = BootstrapToken::parse("zzzzzz.0123456789abcdef").unwrap();
    assert!(matches!(
        trust::verify_cluster_info(&configmap_body(&data), &other, &[pin], in_validity())
            .unwrap_err(),
        Distrust::NoSignature { .. }
    ));
    // pinned to the serving leaf instead of the CA
    let leaf =
        CaPin::parse("sha256:c2d1613b4f8745729e164b825db3cebce5208ae8d1cb6f49113b571bf60600b3")
            .unwrap();
    assert!(matches!(
        trust::verify_cluster_info(&configmap_body(&data), &token, &[leaf], in_validity())
            .unwrap_err(),
        Distrust::PinMismatch { .. }
    ));
    // any of several pins may match
    assert!(
        trust::verify_cluster_info(&configmap_body(&data), &token, &[leaf, pin], in_validity())
            .is_ok()
    );
    // after the CA's notAfter (2126-10-31)
    let later = OffsetDateTime::from_unix_timestamp(5_000_000_000).unwrap();
    assert!(matches!(
        trust::verify_cluster_info(&configmap_body(&data), &token, &[pin], later).unwrap_err(),
        Distrust::Ca(why) if why.contains("expired")
    ));
    // before its notBefore: the clock is wrong, and the error says so
    let earlier = OffsetDateTime::from_unix_timestamp(1_000_000_000).unwrap();
    assert!(matches!(
        trust::verify_cluster_info(&configmap_body(&data), &token, &[pin], earlier).unwrap_err(),
        Distrust::Ca(why) if why.contains("clock")
    ));
    // not a ConfigMap, no kubeconfig
    assert!(matches!(
        trust::verify_cluster_info(
            br#"{"kind":"Status","code":403}"#,
            &token,
            &[pin],
            in_validity()
        )
        .unwrap_err(),
        Distrust::NotAConfigMap(_)
    ));
    assert_eq!(
        trust::verify_cluster_info(&configmap_body(&json!({})), &token, &[pin], in_validity())
            .unwrap_err(),
        Distrust::NoKubeconfig
    );
}

#[test]
fn a_leaf_certificate_is_not_a_ca() {
    let err =
        trust::ca::check_ca_bundle(&pem("pem/generated-apiserver-serving.crt"), in_validity())
            .unwrap_err();
    assert!(err.contains("not a CA"), "{err}");
    let ok = trust::ca::check_ca_bundle(&pem("pem/generated-cluster-info-ca.crt"), in_validity())
        .unwrap();
    assert_eq!(ok[0].not_after, "2126-10-31T14:23:35Z");
}

#[test]
fn with_pins_only_the_pinned_cas_are_trusted() {
    // A signed bundle of two CAs, one of them pinned: the other one must not
    // become a TLS root or be written to ca.crt.
    let v = vectors("cluster-info.json");
    let g = &v["generated"];
    let pinned = pem(s(&g["ca_pem_file"]));
    let other = pem("pem/kubeadm-dryrun-cluster-info-ca.pem");
    let bundle = [other.clone(), pinned.clone()].concat();
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(&bundle);
    let kubeconfig = format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {data}\n    server: https://192.0.2.10:6443\n  name: \"\"\nkind: Config\n"
    );
    let token = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
    let sig = jws::detached_signature(kubeconfig.as_bytes(), "abcdef", b"0123456789abcdef");
    let body = configmap_body(&json!({"kubeconfig": kubeconfig, "jws-kubeconfig-abcdef": sig}));
    let pin = CaPin::parse(s(&g["ca_cert_hash"])).unwrap();

    let v = trust::verify_cluster_info(&body, &token, &[pin], in_validity()).unwrap();
    assert_eq!(v.cas.len(), 1);
    assert_eq!(v.cas[0].pin, pin);
    assert_eq!(pins_of_bundle(&v.ca_pem).unwrap(), vec![pin]);
    // without pins the whole signed bundle is the CA
    let v = trust::verify_cluster_info(&body, &token, &[], in_validity()).unwrap();
    assert_eq!(v.cas.len(), 2);
    assert_eq!(v.ca_pem, bundle);
}
