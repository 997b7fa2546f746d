//! Human logs on stderr; stdout is kept for the command's result.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use crate::settings::{LogSettings, Verbosity};

/// Our own events at the chosen level; the libraries under us (HTTP, TLS,
/// DNS) only speak up for warnings unless tracing is asked for. Their debug
/// output names hosts and handshake steps, never header values: the
/// Authorization header is marked sensitive.
pub fn init(log: LogSettings) {
    let (ours, theirs) = match log.verbosity {
        Verbosity::Info => (LevelFilter::INFO, LevelFilter::WARN),
        Verbosity::Debug => (LevelFilter::DEBUG, LevelFilter::WARN),
        Verbosity::Trace => (LevelFilter::TRACE, LevelFilter::DEBUG),
    };
    let filter = Targets::new()
        .with_default(theirs)
        .with_target("attach_node", ours);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(log.verbosity >= Verbosity::Trace);
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if log.timestamps {
        registry.with(fmt).try_init()
    } else {
        registry.with(fmt.without_time()).try_init()
    };
}
