//! A fleet burst against the lab: many agents discovering and joining at
//! once, each into its own scratch root, against an API server that admits
//! a fixed number of requests at a time (`api_max_in_flight`; beyond it,
//! 429 with `Retry-After: 1`, as kube-apiserver's max-in-flight filter).
//!
//! The agents are either real `attach-node join` processes, or SIMULATED
//! kubeadm agents ([`sim`]): threads in one child process making the same
//! requests under kubeadm's retry policy. Either way every agent is started
//! and held at a barrier first, then all are released at once; the burst is
//! timed from the release. Real agents are held on their standard input:
//! each reads its openapi token from it (`--openapi-token-file -`), and the
//! harness writes the tokens only once all are running.
//!
//! What a burst reports comes from the lab's own request log (every request
//! either server saw, with the status it got), the agents' exit statuses and
//! logs, and the kernel's CPU accounting (`/proc`).

pub mod sim;

use std::fs::{self, File};
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use attach_node_lab::{Fault, Lab, LabConfig, Server};

pub use sim::{KUBEADM_DISCOVERY_RETRY_INTERVAL, Outcome, Policy};

/// How long the harness waits for the last agent after the release. Every
/// agent bounds itself well before (attach-node's `--timeout`, 5 min by
/// default; kubeadm's 5-minute discovery timeout per poll); this only keeps a
/// hung agent from hanging the harness.
const HARNESS_DEADLINE: Duration = Duration::from_secs(20 * 60);

/// One burst.
#[derive(Clone, Debug)]
pub struct Burst {
    pub agents: usize,
    /// The API server's admission limit.
    pub api_max_in_flight: usize,
    /// How long the API server holds each admitted request (its service
    /// time; the lab's `ApiServerSlow`). Zero answers at once.
    pub api_latency: Duration,
    /// Where the run's directory (lab files, roots, logs) is made; it is
    /// removed afterwards.
    pub scratch: PathBuf,
    pub fleet: Fleet,
}

/// Who joins.
#[derive(Clone, Debug)]
pub enum Fleet {
    /// Real `attach-node join --root` processes, one per agent.
    AttachNode { binary: PathBuf },
    /// Simulated agents under `policy`: threads in one child process,
    /// `program sim-agents ...` (the `attach-node-fleet` binary).
    Simulated { program: PathBuf, policy: Policy },
}

impl Fleet {
    pub fn label(&self) -> String {
        match self {
            Fleet::AttachNode { .. } => "attach-node".into(),
            Fleet::Simulated { policy, .. } => format!("{} (simulated)", policy.name()),
        }
    }
}

/// Requests one server saw, by status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub ok: u64,
    pub not_found: u64,
    pub too_many_requests: u64,
    pub other: u64,
}

impl Counts {
    fn add(&mut self, status: Option<u16>) {
        self.total += 1;
        match status {
            Some(200..=299) => self.ok += 1,
            Some(404) => self.not_found += 1,
            Some(429) => self.too_many_requests += 1,
            _ => self.other += 1,
        }
    }
}

/// What a burst came to.
#[derive(Clone, Debug)]
pub struct Report {
    pub label: String,
    pub simulated: bool,
    pub agents: usize,
    pub api_max_in_flight: usize,
    pub api_latency: Duration,
    pub succeeded: usize,
    /// A few failures, `exit N: last log line` (or the simulated agent's
    /// error).
    pub failure_samples: Vec<String>,
    /// Starting every agent up to the barrier (not part of the burst).
    pub spawn: Duration,
    /// From the release to each agent's success: the median and the last.
    pub median_success: Option<Duration>,
    pub last_success: Option<Duration>,
    /// From the release to the last agent's end, success or not.
    pub wall: Duration,
    pub control_plane: Counts,
    pub api_server: Counts,
    /// Retries the agents made (attach-node's "retrying in" log lines; the
    /// simulated agents' failed tries).
    pub client_retries: u64,
    /// CPU of the lab (this process: both servers and the harness' waits).
    pub lab_cpu: Duration,
    /// CPU of all the agents together (their whole lives, start included).
    pub agents_cpu: Duration,
    /// Share of the machine's CPUs busy between the release and the end.
    pub machine_busy: Option<f64>,
}

impl Report {
    /// All requests (both servers) per successful join.
    pub fn requests_per_join(&self) -> Option<f64> {
        (self.succeeded > 0).then(|| {
            (self.control_plane.total + self.api_server.total) as f64 / self.succeeded as f64
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        let counts = |c: &Counts| {
            serde_json::json!({
                "total": c.total, "ok": c.ok, "notFound": c.not_found,
                "tooManyRequests": c.too_many_requests, "other": c.other,
            })
        };
        serde_json::json!({
            "fleet": self.label,
            "simulated": self.simulated,
            "agents": self.agents,
            "apiMaxInFlight": self.api_max_in_flight,
            "apiLatencyMs": self.api_latency.as_secs_f64() * 1000.0,
            "succeeded": self.succeeded,
            "failureSamples": self.failure_samples,
            "spawnMs": ms(Some(self.spawn)),
            "medianSuccessMs": ms(self.median_success),
            "lastSuccessMs": ms(self.last_success),
            "wallMs": ms(Some(self.wall)),
            "controlPlane": counts(&self.control_plane),
            "apiServer": counts(&self.api_server),
            "requestsPerJoin": self.requests_per_join(),
            "clientRetries": self.client_retries,
            "labCpuMs": ms(Some(self.lab_cpu)),
            "agentsCpuMs": ms(Some(self.agents_cpu)),
            "machineBusy": self.machine_busy,
        })
    }
}

/// A Markdown table of bursts side by side: one row per fleet, each
/// `groups` entry being that fleet's runs. With several runs a figure is
/// their median, with the smallest and largest in brackets.
pub fn markdown_table(groups: &[Vec<Report>]) -> String {
    let mut s = String::from(
        "| fleet | joined | time to last success | median join | requests per join: control plane | API server (429s included) | 429s | lab CPU | agents' CPU | machine busy |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for runs in groups.iter().filter(|g| !g.is_empty()) {
        let first = &runs[0];
        let per_join = |n: fn(&Report) -> u64| {
            stat(
                runs.iter()
                    .filter(|r| r.succeeded > 0)
                    .map(|r| n(r) as f64 / r.succeeded as f64),
                2,
                "",
            )
        };
        let secs = |d: fn(&Report) -> Option<Duration>| {
            stat(runs.iter().filter_map(d).map(|d| d.as_secs_f64()), 1, " s")
        };
        let joined: Vec<String> = runs.iter().map(|r| r.succeeded.to_string()).collect();
        s.push_str(&format!(
            "| {} × {} | {} / {}{} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            first.agents,
            first.label,
            joined.join(", "),
            first.agents,
            if runs.len() > 1 {
                format!(" ({} runs)", runs.len())
            } else {
                String::new()
            },
            secs(|r| r.last_success),
            secs(|r| r.median_success),
            per_join(|r| r.control_plane.total),
            per_join(|r| r.api_server.total),
            stat(
                runs.iter().map(|r| {
                    (r.control_plane.too_many_requests + r.api_server.too_many_requests) as f64
                }),
                0,
                "",
            ),
            stat(runs.iter().map(|r| r.lab_cpu.as_secs_f64()), 1, " s"),
            stat(runs.iter().map(|r| r.agents_cpu.as_secs_f64()), 1, " s"),
            stat(
                runs.iter()
                    .filter_map(|r| r.machine_busy.map(|b| b * 100.0)),
                0,
                " %"
            ),
        ));
    }
    let started: Vec<String> = groups
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| {
            format!(
                "{} {}",
                g[0].label,
                stat(g.iter().map(|r| r.spawn.as_secs_f64()), 1, " s")
            )
        })
        .collect();
    s.push_str(&format!(
        "\nStarting the agents and holding them at the barrier, before the release (not in the times above): {}.\n",
        started.join("; ")
    ));
    s
}

/// `median (min … max)` of `values` with `prec` decimals, the unit after
/// the median; just the value when there is one.
fn stat(values: impl Iterator<Item = f64>, prec: usize, unit: &str) -> String {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => "–".to_owned(),
        1 => format!("{:.prec$}{unit}", v[0]),
        n => {
            let median = if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            };
            format!(
                "{median:.prec$}{unit} ({:.prec$} … {:.prec$})",
                v[0],
                v[n - 1]
            )
        }
    }
}

/// Runs one burst against a fresh lab.
pub fn run(b: &Burst) -> io::Result<Report> {
    if b.agents == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a burst needs at least one agent",
        ));
    }
    let mut cfg = LabConfig::default().api_max_in_flight(b.api_max_in_flight);
    if !b.api_latency.is_zero() {
        cfg = cfg.fault(Fault::ApiServerSlow(b.api_latency));
    }
    let lab = Lab::start(cfg)?;
    let dir = RunDir::create(&b.scratch)?;
    lab.write_files(&dir.0.join("lab"))?;
    let run = match &b.fleet {
        Fleet::AttachNode { binary } => attach_node_burst(b, &lab, &dir.0, binary)?,
        Fleet::Simulated { program, policy } => simulated_burst(b, &lab, &dir.0, program, *policy)?,
    };

    let mut control_plane = Counts::default();
    let mut api_server = Counts::default();
    for r in lab.requests() {
        match r.server {
            Server::ControlPlane => control_plane.add(r.status),
            Server::ApiServer => api_server.add(r.status),
        }
    }
    drop(lab);

    let mut successes: Vec<Duration> = run
        .ends
        .iter()
        .filter(|e| e.ok)
        .map(|e| e.elapsed)
        .collect();
    successes.sort();
    Ok(Report {
        label: b.fleet.label(),
        simulated: matches!(b.fleet, Fleet::Simulated { .. }),
        agents: b.agents,
        api_max_in_flight: b.api_max_in_flight,
        api_latency: b.api_latency,
        succeeded: successes.len(),
        failure_samples: run.failure_samples,
        spawn: run.spawn,
        median_success: successes
            .get(successes.len().saturating_sub(1) / 2)
            .copied(),
        last_success: successes.last().copied(),
        wall: run.ends.iter().map(|e| e.elapsed).max().unwrap_or_default(),
        control_plane,
        api_server,
        client_retries: run.client_retries,
        lab_cpu: run.cpu.lab,
        agents_cpu: run.cpu.agents,
        machine_busy: run.cpu.machine_busy,
    })
}

/// One agent's end, timed from the release.
struct End {
    ok: bool,
    elapsed: Duration,
}

struct Run {
    spawn: Duration,
    ends: Vec<End>,
    failure_samples: Vec<String>,
    client_retries: u64,
    cpu: Cpu,
}

const FAILURE_SAMPLES: usize = 5;

fn attach_node_burst(b: &Burst, lab: &Lab, dir: &Path, binary: &Path) -> io::Result<Run> {
    let roots = dir.join("roots");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs)?;
    for i in 0..b.agents {
        make_root(&roots.join(format!("{i:04}")), &format!("fleet-{i:04}"))?;
    }
    let control_plane = lab.control_plane_url();
    let control_plane_ca = dir.join("lab/control-plane-ca.pem");

    let (tx, rx) = mpsc::channel::<(usize, io::Result<ExitStatus>, Instant)>();
    let mut stdins = Vec::with_capacity(b.agents);
    let mut pids = Vec::with_capacity(b.agents);
    let spawn_started = Instant::now();
    for i in 0..b.agents {
        let spawned = File::create(logs.join(format!("{i:04}.log"))).and_then(|log| {
            Command::new(binary)
                .arg("join")
                .arg("--control-plane")
                .arg(&control_plane)
                .arg("--control-plane-ca")
                .arg(&control_plane_ca)
                .args(["--openapi-token-file", "-", "--root"])
                .arg(roots.join(format!("{i:04}")))
                .env_clear()
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
        });
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                // Closing their stdin hands every started agent an empty
                // token: they stop at once (usage error) and are reaped.
                drop(stdins);
                drop(tx);
                for _ in rx.iter() {}
                return Err(io::Error::new(
                    e.kind(),
                    format!("starting agent {i} of {}: {e}", b.agents),
                ));
            }
        };
        stdins.push(child.stdin.take().expect("stdin is piped"));
        pids.push(child.id());
        let tx = tx.clone();
        // A thread per agent blocked in wait(2): no polling, and each exit
        // is timed when it happens.
        thread::Builder::new()
            .name(format!("wait-agent-{i}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                let status = child.wait();
                let _ = tx.send((i, status, Instant::now()));
            })?;
    }
    drop(tx);
    let spawn = spawn_started.elapsed();

    let token = lab.openapi_token();
    let cpu = CpuMeter::start();
    let released = Instant::now();
    for mut stdin in stdins {
        // An agent that already died has closed its end; it is reported
        // through its exit status.
        let _ = stdin.write_all(token.as_bytes());
    }

    let mut statuses: Vec<Option<(Option<i32>, Duration)>> = vec![None; b.agents];
    let deadline = released + HARNESS_DEADLINE;
    let mut received = 0;
    while received < b.agents {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match rx.recv_timeout(left) {
            Ok((i, status, at)) => {
                received += 1;
                let code = status.ok().and_then(|s| s.code());
                statuses[i] = Some((code, at.duration_since(released)));
            }
            Err(_) => break,
        }
    }
    let cpu = cpu.finish();
    if received < b.agents {
        // A hung agent: end it by its id, so the harness itself ends.
        for (i, s) in statuses.iter().enumerate() {
            if s.is_none() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pids[i].to_string()])
                    .status();
            }
        }
    }

    let mut ends = Vec::with_capacity(b.agents);
    let mut failure_samples = Vec::new();
    let mut client_retries = 0;
    for (i, s) in statuses.iter().enumerate() {
        let log = fs::read_to_string(logs.join(format!("{i:04}.log"))).unwrap_or_default();
        client_retries += log.lines().filter(|l| l.contains("retrying in")).count() as u64;
        let (ok, elapsed) = match s {
            Some((code, elapsed)) => (*code == Some(0), *elapsed),
            None => (false, HARNESS_DEADLINE),
        };
        if !ok && failure_samples.len() < FAILURE_SAMPLES {
            let how = match s {
                Some((Some(code), _)) => format!("exit {code}"),
                Some((None, _)) => "killed by a signal".to_owned(),
                None => format!("still running after {} s", HARNESS_DEADLINE.as_secs()),
            };
            let last = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            failure_samples.push(format!("agent {i}: {how}: {last}"));
        }
        ends.push(End { ok, elapsed });
    }
    Ok(Run {
        spawn,
        ends,
        failure_samples,
        client_retries,
        cpu,
    })
}

fn simulated_burst(
    b: &Burst,
    lab: &Lab,
    dir: &Path,
    program: &Path,
    policy: Policy,
) -> io::Result<Run> {
    let interval = match policy {
        Policy::Kubeadm { interval } | Policy::KubeadmClientGo { interval } => interval,
    };
    let spawn_started = Instant::now();
    let mut child = Command::new(program)
        .arg("sim-agents")
        .args(["--agents", &b.agents.to_string()])
        .args(["--policy", policy.name()])
        .args(["--interval-ms", &interval.as_millis().to_string()])
        .args(["--control-plane", &lab.control_plane_url()])
        .arg("--control-plane-ca")
        .arg(dir.join("lab/control-plane-ca.pem"))
        .arg("--openapi-token-file")
        .arg(dir.join("lab/openapi-token"))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut line = String::new();
    out.read_line(&mut line)?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other(format!(
            "the simulated agents did not start: {:?}",
            line.trim()
        )));
    }
    let spawn = spawn_started.elapsed();

    let cpu = CpuMeter::start();
    writeln!(stdin, "go")?;
    drop(stdin);
    let mut outcomes = Vec::with_capacity(b.agents);
    for line in out.lines() {
        if let Some(o) = Outcome::from_line(&line?) {
            outcomes.push(o);
        }
    }
    let status = child.wait()?;
    let cpu = cpu.finish();
    if !status.success() || outcomes.len() != b.agents {
        return Err(io::Error::other(format!(
            "the simulated agents ended with {status} after reporting {} of {}",
            outcomes.len(),
            b.agents
        )));
    }
    let failure_samples = outcomes
        .iter()
        .filter(|o| !o.ok)
        .take(FAILURE_SAMPLES)
        .map(|o| format!("agent {}: {}", o.index, o.error))
        .collect();
    // Every try after an agent's first of each of its five requests.
    let client_retries = outcomes.iter().map(|o| o.requests.saturating_sub(5)).sum();
    Ok(Run {
        spawn,
        ends: outcomes
            .iter()
            .map(|o| End {
                ok: o.ok,
                elapsed: o.elapsed,
            })
            .collect(),
        failure_samples,
        client_retries,
        cpu,
    })
}

/// A root like bench/join.sh's: a VM's own few files, and its hostname
/// (the node name).
fn make_root(root: &Path, hostname: &str) -> io::Result<()> {
    fs::create_dir_all(root.join("etc/containerd"))?;
    fs::create_dir_all(root.join("etc/sysctl.d"))?;
    fs::create_dir_all(root.join("var/lib"))?;
    fs::write(root.join("etc/hostname"), format!("{hostname}\n"))?;
    fs::write(root.join("etc/containerd/config.toml"), "version = 2\n")?;
    fs::write(
        root.join("etc/sysctl.d/10-site.conf"),
        "vm.swappiness = 10\n",
    )?;
    Ok(())
}

/// The run's directory, removed when dropped.
struct RunDir(PathBuf);

impl RunDir {
    fn create(scratch: &Path) -> io::Result<RunDir> {
        fs::create_dir_all(scratch)?;
        for n in 0..1000 {
            let p = scratch.join(format!("attach-node-fleet-{}-{n}", std::process::id()));
            match fs::create_dir(&p) {
                Ok(()) => return Ok(RunDir(p)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no free run directory name"))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// CPU used between two points: this process, its reaped children, and
/// the whole machine.
struct Cpu {
    lab: Duration,
    agents: Duration,
    machine_busy: Option<f64>,
}

struct CpuMeter {
    own: (u64, u64),
    machine: Option<(u64, u64)>,
}

/// The kernel's USER_HZ, in which /proc reports CPU times: 100 on every
/// Linux architecture this runs on.
const USER_HZ: u64 = 100;

impl CpuMeter {
    fn start() -> CpuMeter {
        CpuMeter {
            own: own_ticks().unwrap_or_default(),
            machine: machine_ticks(),
        }
    }

    fn finish(self) -> Cpu {
        let (own, children) = own_ticks().unwrap_or_default();
        let ticks = |t: u64| Duration::from_millis(t * 1000 / USER_HZ);
        let machine_busy = match (self.machine, machine_ticks()) {
            (Some((busy0, all0)), Some((busy1, all1))) if all1 > all0 => {
                Some((busy1 - busy0) as f64 / (all1 - all0) as f64)
            }
            _ => None,
        };
        Cpu {
            lab: ticks(own.saturating_sub(self.own.0)),
            agents: ticks(children.saturating_sub(self.own.1)),
            machine_busy,
        }
    }
}

/// (this process's user+system ticks, its reaped children's), from
/// /proc/self/stat fields 14-17.
fn own_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<u64> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    match fields[..] {
        [utime, stime, cutime, cstime] => Some((utime + stime, cutime + cstime)),
        _ => None,
    }
}

/// (busy ticks, all ticks) over all CPUs, from /proc/stat; idle and iowait
/// count as not busy.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice,
    // already counted in user and nice].
    let all: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((all - idle, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_accounting_reads() {
        assert!(own_ticks().is_some());
        let (busy, all) = machine_ticks().unwrap();
        assert!(busy <= all);
    }

    #[test]
    fn medians_and_ranges() {
        assert_eq!(stat([].into_iter(), 1, " s"), "–");
        assert_eq!(stat([2.0].into_iter(), 1, " s"), "2.0 s");
        assert_eq!(
            stat([3.0, 1.0, 2.0].into_iter(), 1, " s"),
            "2.0 s (1.0 … 3.0)"
        );
        assert_eq!(stat([4.0, 1.0, 2.0, 3.0].into_iter(), 0, ""), "2 (1 … 4)");
    }

    #[test]
    fn counts_by_status() {
        let mut c = Counts::default();
        for s in [Some(200), Some(404), Some(429), Some(429), Some(503), None] {
            c.add(s);
        }
        assert_eq!(
            c,
            Counts {
                total: 6,
                ok: 1,
                not_found: 1,
                too_many_requests: 2,
                other: 2
            }
        );
    }
}
