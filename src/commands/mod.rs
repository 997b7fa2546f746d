//! One module per subcommand; each turns resolved settings into an outcome.

pub mod discover;
pub mod join;
pub mod plan_view;
pub mod reset;
pub mod status;
pub mod uninstall;
