//! `attach-node-fleet`: a fleet burst against the loopback lab, with real
//! attach-node agents and SIMULATED kubeadm agents side by side (see
//! `attach_node_bench`). bench/fleet.sh runs it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use attach_node_bench::{
    self as fleet, Burst, Fleet, KUBEADM_DISCOVERY_RETRY_INTERVAL, Policy, Report, sim,
};
use attach_node_lab::argv::Argv;

const USAGE: &str = "\
Usage: attach-node-fleet burst [OPTIONS]

Starts the loopback lab with an admission limit on its API server, then
AGENTS agents at once, each discovering and joining into its own scratch
root; reports how many succeeded, the requests each join took, the 429s,
the time to the last success and the CPU used. With several --fleet, each
runs in turn against a fresh lab with the same settings.

Options:
  --agents N               agents per burst (default 1000)
  --api-max-in-flight N    API-server requests answered at once; beyond,
                           429 with Retry-After: 1 (default 50)
  --api-latency-ms MS      how long the API server holds each admitted
                           request (default 20)
  --fleet NAME             attach-node (real processes), kubeadm or
                           kubeadm-client-go (SIMULATED agents, threads in
                           one process); repeatable (default: all three)
  --attach-node PATH       the attach-node binary (default: the one next to
                           this program)
  --kubeadm-interval-ms MS kubeadm's discovery retry interval (default 5000,
                           constants.DiscoveryRetryInterval)
  --repeat N               run every fleet N times, in rounds (each round
                           runs each fleet once), and report the median of
                           each figure with its range (default 1)
  --scratch DIR            where the roots go (default: $TMPDIR or /tmp);
                           removed afterwards
  --json FILE              also write the reports as JSON
  -h, --help               show this help
";

struct Options {
    agents: usize,
    api_max_in_flight: usize,
    api_latency: Duration,
    fleets: Vec<String>,
    repeat: usize,
    attach_node: Option<PathBuf>,
    kubeadm_interval: Duration,
    scratch: PathBuf,
    json: Option<PathBuf>,
}

struct SimOptions {
    agents: usize,
    policy: Policy,
    control_plane: String,
    control_plane_ca: PathBuf,
    openapi_token_file: PathBuf,
}

enum Command {
    Help,
    Burst(Box<Options>),
    SimAgents(Box<SimOptions>),
}

fn main() -> ExitCode {
    let command = match parse(std::env::args_os().skip(1).collect()) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("attach-node-fleet: error: {msg}\nTry 'attach-node-fleet --help'.");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(true)
        }
        Command::Burst(o) => burst(&o),
        Command::SimAgents(o) => sim_agents(&o).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("attach-node-fleet: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs each fleet's burst; true if every agent of every burst succeeded.
fn burst(o: &Options) -> Result<bool, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let attach_node = match &o.attach_node {
        Some(p) => p.clone(),
        None => me
            .parent()
            .map(|d| d.join("attach-node"))
            .ok_or("cannot find attach-node; pass --attach-node")?,
    };
    // One entry per fleet, each holding that fleet's runs.
    let mut groups: Vec<Vec<Report>> = vec![Vec::new(); o.fleets.len()];
    let mut all_json = Vec::new();
    for (round, (slot, name)) in
        (0..o.repeat).flat_map(|round| o.fleets.iter().enumerate().map(move |f| (round, f)))
    {
        let fleet = match name.as_str() {
            "attach-node" => Fleet::AttachNode {
                binary: attach_node.clone(),
            },
            other => Fleet::Simulated {
                program: me.clone(),
                policy: Policy::parse(other, o.kubeadm_interval)
                    .ok_or_else(|| format!("unknown fleet '{other}'"))?,
            },
        };
        eprintln!(
            "attach-node-fleet: round {} of {}: {} × {}, API server admitting {} at a time, {} ms each ...",
            round + 1,
            o.repeat,
            o.agents,
            fleet.label(),
            o.api_max_in_flight,
            o.api_latency.as_millis()
        );
        let report = fleet::run(&Burst {
            agents: o.agents,
            api_max_in_flight: o.api_max_in_flight,
            api_latency: o.api_latency,
            scratch: o.scratch.clone(),
            fleet,
        })
        .map_err(|e| format!("{name}: {e}"))?;
        for f in &report.failure_samples {
            eprintln!("attach-node-fleet: {name}: failed: {f}");
        }
        let mut json = report.to_json();
        json["round"] = (round + 1).into();
        all_json.push(json);
        groups[slot].push(report);
        if let Some(path) = &o.json {
            let text = serde_json::to_string_pretty(&all_json).map_err(|e| e.to_string())?;
            std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    print!("{}", fleet::markdown_table(&groups));
    Ok(groups.iter().flatten().all(|r| r.succeeded == r.agents))
}

fn sim_agents(o: &SimOptions) -> Result<(), String> {
    let read =
        |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let start = sim::Start {
        control_plane: o.control_plane.clone(),
        control_plane_ca_pem: read(&o.control_plane_ca)?,
        openapi_token: read(&o.openapi_token_file)?.trim().to_owned(),
    };
    sim::serve_child(&start, o.agents, o.policy).map_err(|e| e.to_string())
}

fn parse(args: Vec<OsString>) -> Result<Command, String> {
    let mut args = Argv::new(args)?;
    let sub = match args.word().as_deref() {
        None => return Err("missing command (burst)".into()),
        Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some(s @ ("burst" | "sim-agents")) => s.to_owned(),
        Some(other) => return Err(format!("unknown command '{other}'")),
    };

    let mut agents = 1000usize;
    let mut api_max_in_flight = 50usize;
    let mut api_latency = Duration::from_millis(20);
    let mut fleets = Vec::new();
    let mut repeat = 1usize;
    let mut attach_node = None;
    let mut interval = KUBEADM_DISCOVERY_RETRY_INTERVAL;
    let mut scratch = std::env::temp_dir();
    let mut json = None;
    let mut policy = None;
    let mut control_plane = None;
    let mut control_plane_ca = None;
    let mut token_file = None;
    while let Some(f) = args.flag() {
        let flag = f.name.clone();
        let mut value = || f.value(&mut args);
        let count = |v: String, flag: &str| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("{flag}: not a whole number: '{v}'"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--agents" => agents = count(value()?, &flag)? as usize,
            "--api-max-in-flight" => api_max_in_flight = count(value()?, &flag)? as usize,
            "--api-latency-ms" => api_latency = Duration::from_millis(count(value()?, &flag)?),
            "--fleet" => fleets.push(value()?),
            "--repeat" => repeat = count(value()?, &flag)? as usize,
            "--attach-node" => attach_node = Some(PathBuf::from(value()?)),
            "--kubeadm-interval-ms" | "--interval-ms" => {
                interval = Duration::from_millis(count(value()?, &flag)?);
            }
            "--scratch" => scratch = PathBuf::from(value()?),
            "--json" => json = Some(PathBuf::from(value()?)),
            "--policy" => policy = Some(value()?),
            "--control-plane" => control_plane = Some(value()?),
            "--control-plane-ca" => control_plane_ca = Some(PathBuf::from(value()?)),
            "--openapi-token-file" => token_file = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if agents == 0 || repeat == 0 {
        return Err("--agents and --repeat must be at least 1".into());
    }
    if sub == "sim-agents" {
        let name = policy.ok_or("sim-agents needs --policy")?;
        return Ok(Command::SimAgents(Box::new(SimOptions {
            agents,
            policy: Policy::parse(&name, interval).ok_or(format!("unknown policy '{name}'"))?,
            control_plane: control_plane.ok_or("sim-agents needs --control-plane")?,
            control_plane_ca: control_plane_ca.ok_or("sim-agents needs --control-plane-ca")?,
            openapi_token_file: token_file.ok_or("sim-agents needs --openapi-token-file")?,
        })));
    }
    if fleets.is_empty() {
        fleets = vec![
            "attach-node".into(),
            "kubeadm".into(),
            "kubeadm-client-go".into(),
        ];
    }
    for f in &fleets {
        if f != "attach-node" && Policy::parse(f, interval).is_none() {
            return Err(format!(
                "unknown fleet '{f}' (attach-node, kubeadm, kubeadm-client-go)"
            ));
        }
    }
    Ok(Command::Burst(Box::new(Options {
        agents,
        api_max_in_flight,
        api_latency,
        fleets,
        repeat,
        attach_node,
        kubeadm_interval: interval,
        scratch,
        json,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn command_lines() {
        assert!(matches!(parse(args("--help")), Ok(Command::Help)));
        assert!(parse(args("")).is_err());
        assert!(parse(args("burst --agents 0")).is_err());
        assert!(parse(args("burst --repeat 0")).is_err());
        assert!(parse(args("burst --fleet nope")).is_err());
        assert!(parse(args("sim-agents --agents 3")).is_err());
        let Ok(Command::Burst(o)) = parse(args(
            "burst --agents=20 --api-max-in-flight 4 --api-latency-ms 5 --fleet kubeadm --kubeadm-interval-ms 100",
        )) else {
            panic!("should parse");
        };
        assert_eq!(o.agents, 20);
        assert_eq!(o.fleets, ["kubeadm"]);
        assert_eq!(o.kubeadm_interval, Duration::from_millis(100));
        let Ok(Command::Burst(o)) = parse(args("burst")) else {
            panic!("should parse");
        };
        assert_eq!(o.fleets.len(), 3);
        assert_eq!(o.repeat, 1);
    }
}
