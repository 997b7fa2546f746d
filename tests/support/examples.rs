//! The delivery files as users get them, shared by tests/delivery.rs and
//! the e2e suite's delivery cases.

/// The first-boot unit, which the examples carry verbatim.
pub const UNIT: &str = include_str!("../../systemd/attach-node-firstboot.service");

/// The userdata examples, by file name.
pub const EXAMPLES: [(&str, &str); 3] = [
    (
        "one-liner.yaml",
        include_str!("../../cloud-init/one-liner.yaml"),
    ),
    (
        "firstboot-unit.yaml",
        include_str!("../../cloud-init/firstboot-unit.yaml"),
    ),
    (
        "autoscaler-node.yaml",
        include_str!("../../cloud-init/autoscaler-node.yaml"),
    ),
];

/// The examples' placeholders, which the tests replace with the lab's.
pub const PLACEHOLDER_CONTROL_PLANE: &str = "https://cp.example.com";
pub const PLACEHOLDER_TOKEN: &str = "REPLACE-WITH-YOUR-OPENAPI-TOKEN";
pub const PLACEHOLDER_DOWNLOADS: &str = "https://downloads.example.com/attach-node/v0.1.0";
