//! One module per subcommand; each turns resolved settings into an outcome.

pub mod discover;
