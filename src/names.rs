//! The grammars of Kubernetes names, written once: apimachinery's DNS-1123
//! label and subdomain. The node name, ClusterInfo's `clusterDomain` and the
//! prefixes of label keys all take them from here.

/// The longest DNS-1123 subdomain (a node name, a label key's prefix).
pub const SUBDOMAIN_MAX: usize = 253;

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` without a length limit: the subdomain
/// grammar repeats this shape and bounds only the whole.
pub fn is_dns1123_label_shaped(s: &str) -> bool {
    let lower_alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            lower_alnum(first)
                && lower_alnum(last)
                && b.iter().all(|c| lower_alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`, any
/// length.
pub fn is_dns1123_subdomain_shaped(s: &str) -> bool {
    s.split('.').all(is_dns1123_label_shaped)
}

/// apimachinery's `IsDNS1123Subdomain`: the shape, and at most 253 bytes
/// (the grammar is ASCII, so bytes are characters).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= SUBDOMAIN_MAX && is_dns1123_subdomain_shaped(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains() {
        for ok in [
            "a",
            "a-b.c",
            "a-b.c0",
            "0",
            "cluster.local",
            "node-1.example.com",
            &"a".repeat(253),
        ] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        let too_long = "a".repeat(254);
        for bad in [
            "",
            "A",
            "Cluster.local",
            "a..b",
            ".a",
            "a.",
            "-a",
            "a-",
            "a_b",
            "a b",
            &too_long,
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
            if bad != too_long {
                assert!(!is_dns1123_subdomain_shaped(bad), "{bad}");
            }
        }
        assert!(is_dns1123_subdomain_shaped(&too_long));
        assert!(!is_dns1123_label_shaped(""));
    }
}
