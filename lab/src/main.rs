//! `attach-node-lab serve`: runs a lab until killed or its lifetime passes,
//! for shell demos and benchmarks.

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use attach_node_lab::argv::Argv;
use attach_node_lab::{Fault, Lab, LabConfig, RetryAfter};

const USAGE: &str = "\
Usage: attach-node-lab serve --dir DIR [OPTIONS]

Runs attach-node's loopback lab: a control plane and a Kubernetes API server
on 127.0.0.1, each with its own CA. Writes into DIR (created 0700):
  control-plane-ca.pem  cluster-ca.pem  lab.env
  openapi-token  openapi-token-single-use  openapi-token-expired
  bootstrap-token       (token files are 0600, without trailing newline)
  bootstrap-kubelet.conf  (0600: kubeadm's bootstrap kubeconfig for the lab)
then prints `ready <control-plane-url> <api-server-url>` on stdout and serves
until killed (SIGTERM/SIGINT) or until the lifetime passes.

Options:
  --dir DIR               where to write the files above (required)
  --fault NAME[=VALUE]    inject a failure; repeatable (see below)
  --node NAME[=STATE]     register a Node; STATE is ready (default) or not-ready
  --api-max-in-flight N   beyond N concurrent API-server requests answer 429
  --node-not-ready-on-register
                          Nodes kubelets register start NotReady
  --csr-approval-delay SECONDS
                          kubelet CSRs show as approved this long after
                          creation (default 0)
  --lifetime SECONDS      exit after this long (default 600)
  --quiet                 do not log requests to stderr
  -h, --help              show this help

Faults (VALUE defaults in brackets):
  control-plane-429[=TIMES]            first TIMES [2] requests: 429, Retry-After: 1
  control-plane-429-http-date[=TIMES]  same, Retry-After as an HTTP date 1s ahead
  control-plane-503[=TIMES]            first TIMES [2] requests: 503
  control-plane-status=CODE            every request: CODE
  control-plane-slow[=SECONDS]         wait SECONDS [5] before each answer
  control-plane-oversized              200 with a ~2 MiB ClusterInfo
  control-plane-not-schema             200 with JSON lacking bootstrapToken
  api-server-503[=TIMES]               first TIMES [2] cluster-info GETs: 503
  api-server-slow[=SECONDS]            wait SECONDS [5] before each API answer
  tampered-jws                         the token's JWS has a flipped MAC byte
  no-signature                         no JWS for the token's id
  ca-not-ca                            the kubeconfig CA has CA:false
  ca-expired                           the kubeconfig CA expired in 2001
  different-cert-after-trust           later TLS handshakes show an impostor cert
  cluster-info-changed                 the 2nd cluster-info differs from the 1st
  csr-never-approved                   kubelet CSRs are created, never signed
";

struct Serve {
    dir: PathBuf,
    config: LabConfig,
    lifetime: Duration,
}

enum Command {
    Help,
    Serve(Box<Serve>),
}

fn main() -> ExitCode {
    let command = match parse(std::env::args_os().skip(1).collect()) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("attach-node-lab: error: {msg}\nTry 'attach-node-lab --help'.");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Serve(s) => match serve(*s) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("attach-node-lab: error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(s: Serve) -> io::Result<()> {
    let lab = Lab::start(s.config)?;
    lab.write_files(&s.dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", s.dir.display())))?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "ready {} {}",
        lab.control_plane_url(),
        lab.api_server_url()
    )?;
    out.flush()?;
    drop(out);

    // No signal handling needed: the default action for SIGTERM and SIGINT
    // ends the process, and the kernel closes the listeners.
    let deadline = Instant::now() + s.lifetime;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        thread::sleep((deadline - now).min(Duration::from_secs(1)));
    }
    drop(lab);
    Ok(())
}

fn parse(args: Vec<OsString>) -> Result<Command, String> {
    let mut args = Argv::new(args)?;

    match args.word().as_deref() {
        None => return Err("missing command (serve)".into()),
        Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some("serve") => {}
        Some(other) => return Err(format!("unknown command '{other}'")),
    }

    let mut dir = None;
    let mut config = LabConfig::default().log_requests(true);
    let mut lifetime = Duration::from_secs(600);
    while let Some(f) = args.flag() {
        let flag = f.name.clone();
        let mut value = || f.value(&mut args);
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--fault" => config = config.fault(parse_fault(&value()?)?),
            "--node" => {
                let v = value()?;
                let (name, ready) = match v.split_once('=') {
                    None => (v.as_str(), true),
                    Some((n, "ready")) => (n, true),
                    Some((n, "not-ready")) => (n, false),
                    Some((_, s)) => {
                        return Err(format!(
                            "--node state must be ready or not-ready, not '{s}'"
                        ));
                    }
                };
                if name.is_empty() {
                    return Err("--node needs a name".into());
                }
                config = config.node(name, ready);
            }
            "--api-max-in-flight" => {
                let v = value()?;
                let n = v
                    .parse()
                    .map_err(|_| format!("--api-max-in-flight: not a count: '{v}'"))?;
                config = config.api_max_in_flight(n);
            }
            "--lifetime" => {
                let v = value()?;
                lifetime = Duration::from_secs(
                    v.parse()
                        .map_err(|_| format!("--lifetime: not whole seconds: '{v}'"))?,
                );
            }
            "--quiet" => config = config.log_requests(false),
            "--node-not-ready-on-register" => config = config.node_ready_on_register(false),
            "--csr-approval-delay" => {
                let v = value()?;
                let d = v
                    .parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| format!("--csr-approval-delay: not seconds: '{v}'"))?;
                config = config.csr_approval_delay(d);
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    let dir = dir.ok_or("serve needs --dir DIR")?;
    Ok(Command::Serve(Box::new(Serve {
        dir,
        config,
        lifetime,
    })))
}

fn parse_fault(spec: &str) -> Result<Fault, String> {
    let (name, value) = match spec.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    let times = |default: u32| -> Result<u32, String> {
        value.map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("fault {name}: not a count: '{v}'"))
        })
    };
    let seconds = |default: f64| -> Result<Duration, String> {
        let s = value.map_or(Ok(default), |v| {
            v.parse::<f64>()
                .map_err(|_| format!("fault {name}: not seconds: '{v}'"))
        })?;
        Duration::try_from_secs_f64(s).map_err(|_| format!("fault {name}: not seconds: '{s}'"))
    };
    let no_value = |fault: Fault| -> Result<Fault, String> {
        match value {
            None => Ok(fault),
            Some(_) => Err(format!("fault {name} takes no value")),
        }
    };
    match name {
        "control-plane-429" => Ok(Fault::ControlPlaneTooManyRequests {
            times: times(2)?,
            retry_after: RetryAfter::Seconds(1),
        }),
        "control-plane-429-http-date" => Ok(Fault::ControlPlaneTooManyRequests {
            times: times(2)?,
            retry_after: RetryAfter::HttpDate(Duration::from_secs(1)),
        }),
        "control-plane-503" => Ok(Fault::ControlPlaneServerError {
            times: times(2)?,
            status: 503,
        }),
        "control-plane-status" => {
            let v = value.ok_or("fault control-plane-status needs =CODE")?;
            match v.parse::<u16>() {
                Ok(code @ 100..=599) => Ok(Fault::ControlPlaneStatus(code)),
                _ => Err(format!("fault {name}: not an HTTP status: '{v}'")),
            }
        }
        "control-plane-slow" => Ok(Fault::ControlPlaneSlow(seconds(5.0)?)),
        "control-plane-oversized" => no_value(Fault::ControlPlaneOversized),
        "control-plane-not-schema" => no_value(Fault::ControlPlaneNotSchema),
        "api-server-503" => Ok(Fault::ApiServerError {
            times: times(2)?,
            status: 503,
        }),
        "api-server-slow" => Ok(Fault::ApiServerSlow(seconds(5.0)?)),
        "api-server-oversized" => no_value(Fault::ApiServerOversized),
        "tampered-jws" => no_value(Fault::TamperedJws),
        "no-signature" => no_value(Fault::NoSignatureForToken),
        "ca-not-ca" => no_value(Fault::CaNotCa),
        "ca-expired" => no_value(Fault::CaExpired),
        "different-cert-after-trust" => no_value(Fault::DifferentCertAfterTrust),
        "cluster-info-changed" => no_value(Fault::ClusterInfoChanged),
        "csr-never-approved" => no_value(Fault::CsrNeverApproved),
        _ => Err(format!(
            "unknown fault '{name}' (see attach-node-lab --help)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn every_documented_fault_parses() {
        for line in USAGE
            .lines()
            .skip_while(|l| !l.starts_with("Faults"))
            .skip(1)
        {
            let name = line.split_whitespace().next().unwrap();
            let name = name.split('[').next().unwrap();
            let spec = name.replace("=CODE", "=418");
            assert!(parse_fault(&spec).is_ok(), "{spec}");
        }
    }

    #[test]
    fn fault_values() {
        assert_eq!(
            parse_fault("control-plane-503=5").unwrap(),
            Fault::ControlPlaneServerError {
                times: 5,
                status: 503
            }
        );
        assert_eq!(
            parse_fault("control-plane-slow=0.5").unwrap(),
            Fault::ControlPlaneSlow(Duration::from_millis(500))
        );
        assert!(parse_fault("tampered-jws=1").is_err());
        assert!(parse_fault("control-plane-status").is_err());
        assert!(parse_fault("control-plane-status=1000").is_err());
        assert!(parse_fault("control-plane-slow=-1").is_err());
        assert!(parse_fault("nope").is_err());
    }

    #[test]
    fn command_lines() {
        assert!(matches!(parse(args("--help")), Ok(Command::Help)));
        assert!(matches!(parse(args("serve --help")), Ok(Command::Help)));
        assert!(parse(args("")).is_err());
        assert!(parse(args("serve")).is_err());
        assert!(parse(args("serve --dir")).is_err());
        assert!(parse(args("serve --dir d --bogus")).is_err());
        assert!(parse(args("serve --dir d --lifetime soon")).is_err());
        assert!(parse(args("serve --dir d --node n=sleepy")).is_err());
        assert!(parse(args("serve --dir d --csr-approval-delay never")).is_err());
        let Ok(Command::Serve(s)) = parse(args(
            "serve --dir=d --fault tampered-jws --fault=api-server-503=1 --node n=not-ready --lifetime 3 --quiet --node-not-ready-on-register --csr-approval-delay 0.5 --fault csr-never-approved",
        )) else {
            panic!("should parse");
        };
        assert_eq!(s.dir, PathBuf::from("d"));
        assert_eq!(s.lifetime, Duration::from_secs(3));
    }
}
