//! The `attach-node` binary: parse argv, resolve settings, dispatch, and map
//! the outcome to an exit code. Everything else is in the library.

use std::io::Write;
use std::process::ExitCode;

use attach_node::cli::{self, Cli, Command};
use attach_node::error::Class;
use attach_node::settings::{self, Outside};
use attach_node::{Error, commands, logging};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::with_default_subcommand(std::env::args_os().collect()));
    match run(cli) {
        Ok(stdout) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(stdout.as_bytes()).and_then(|_| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                // The reader went away (`| head`): the command itself did
                // what it was asked, so this is not a failure (ripgrep does
                // the same), and certainly not exit 1, "internal error".
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    let e = Error::new(
                        Class::HostChange,
                        format!("cannot write the output to stdout: {e}"),
                    )
                    .hint("the command itself finished; check where stdout goes (a full disk?)");
                    eprintln!("attach-node: error: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Err(e) => {
            eprintln!("attach-node: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<String, Error> {
    let env = |name: &str| std::env::var(name).ok();
    let mut stdin = std::io::stdin();
    let outside = Outside {
        env: &env,
        stdin: &mut stdin,
    };
    let notices = |log, notices: &[String]| {
        logging::init(log);
        for notice in notices {
            tracing::warn!("{notice}");
        }
    };
    match cli.command {
        Command::Discover(args) => {
            let s = settings::resolve_discover(&args, outside)?;
            notices(s.log, &s.notices);
            commands::discover::run(&s)
        }
        Command::Join(args) => {
            let s = settings::resolve_join(&args, outside)?;
            notices(s.discover.log, &s.discover.notices);
            commands::join::run(&s)
        }
        Command::Reset(args) => {
            let s = settings::resolve_reset(&args, outside)?;
            notices(s.log, &s.notices);
            commands::reset::run(&s)
        }
        Command::Uninstall(args) => {
            let s = settings::resolve_reset(&args, outside)?;
            notices(s.log, &s.notices);
            commands::uninstall::run(&s)
        }
        Command::Status(args) => {
            let s = settings::resolve_status(&args, outside)?;
            logging::init(s.log);
            commands::status::run(&s)
        }
    }
}
