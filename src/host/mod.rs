//! The only code that touches the host's filesystem. Every host path goes
//! through a [`Root`], so `--root DIR` (tests, image baking) and `/` run the
//! same code.

pub mod fsops;

use std::path::{Path, PathBuf};

/// The host's `/`, or a directory standing in for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    base: PathBuf,
}

impl Root {
    pub fn host() -> Self {
        Root {
            base: PathBuf::from("/"),
        }
    }

    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Root { base: dir.into() }
    }

    /// Whether this is the live host (services, sysctls and modules are
    /// acted on only then).
    pub fn is_host(&self) -> bool {
        self.base == Path::new("/")
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Maps an absolute host path (`/etc/...`) under the root. Host paths
    /// are constants of this program or come from its journal, never from
    /// the network, so a relative path here is a bug.
    pub fn path(&self, host_path: &str) -> PathBuf {
        debug_assert!(
            host_path.starts_with('/'),
            "host path {host_path:?} is not absolute"
        );
        self.base.join(host_path.trim_start_matches('/'))
    }
}
