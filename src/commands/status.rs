//! `attach-node status`: this host's join state from attach-node's own
//! records, and what a re-run of join or reset would do.

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::error::Result;
use crate::host::fsops::{self, Found};
use crate::journal::{Kind, Prior, State, Store};
use crate::settings::StatusSettings;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StepView {
    step: String,
    time: Option<String>,
    done: bool,
    /// For files: whether it still holds what the join wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    in_place: Option<bool>,
    /// An action that was listed but not run (under --root).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    listed_only: bool,
    /// A file the join wrote and removed again once it had served (the
    /// bootstrap kubeconfig after the kubelet's TLS bootstrap); `inPlace`
    /// then says whether it is still gone.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    state: &'static str,
    cluster: Option<String>,
    server: Option<String>,
    node_name: Option<String>,
    started: Option<String>,
    finished: Option<String>,
    error: Option<String>,
    steps: Vec<StepView>,
    rerun_join: String,
    rerun_reset: String,
}

pub fn run(s: &StatusSettings) -> Result<String> {
    let store = Store::new(&s.root);
    let view = match store.load()? {
        None => StatusView {
            state: "none",
            cluster: None,
            server: None,
            node_name: None,
            started: None,
            finished: None,
            error: None,
            steps: Vec::new(),
            rerun_join: "join from the start".into(),
            rerun_reset: "nothing recorded: a kubeadm-style cleanup".into(),
        },
        Some(j) => {
            let mut steps = Vec::new();
            let mut pending = 0;
            let mut drifted = 0;
            for e in &j.entries {
                let in_place = match e.kind {
                    Kind::Dir | Kind::Unit | Kind::KubeletOwned => None,
                    // A kernel setting of the running machine: under
                    // --root it says nothing about the root, so not read.
                    Kind::Sysctl => s.root.live().map(|live| {
                        crate::host::system::read_sysctl(live, &e.path)
                            .ok()
                            .as_ref()
                            == e.written.as_ref()
                    }),
                    Kind::File => {
                        let found = fsops::inspect(&s.root.path(&e.path)).unwrap_or(Found::Special);
                        Some(e.is_as_left(&found))
                    }
                };
                if !e.done {
                    pending += 1;
                } else if in_place == Some(false) {
                    drifted += 1;
                }
                let verb = match (e.kind, &e.prior) {
                    (Kind::Dir, _) => "create directory",
                    (Kind::File, Prior::Absent) => "create",
                    (Kind::File, _) => "replace",
                    (Kind::Sysctl, _) => "set sysctl",
                    (Kind::Unit, _) => "enable/restart",
                    (Kind::KubeletOwned, _) => "expect from the kubelet",
                };
                steps.push(StepView {
                    step: if e.retired {
                        format!(
                            "{verb} {}, removed once the kubelet had its own credentials",
                            e.path
                        )
                    } else {
                        format!("{verb} {}", e.path)
                    },
                    time: e.time.clone(),
                    done: e.done,
                    in_place,
                    listed_only: false,
                    removed: e.retired,
                });
            }
            for st in &j.steps {
                steps.push(StepView {
                    step: format!("{}: {}", st.name, st.outcome),
                    time: Some(st.time.clone()),
                    done: true,
                    in_place: None,
                    listed_only: st.listed_only,
                    removed: false,
                });
            }
            let rerun_join = match j.state {
                State::Joined if drifted == 0 => {
                    "nothing, if the configuration is unchanged (each file is checked)".into()
                }
                State::Joined => format!("rewrite {drifted} file(s) that changed since the join"),
                State::Joining | State::Failed => format!(
                    "resume: {pending} step(s) not done yet, {} done are checked and kept",
                    j.entries.len() - pending
                ),
                State::Resetting => "finish the reset first (attach-node reset)".into(),
                State::Reset => "join from the start".into(),
            };
            let rerun_reset = match j.state {
                State::Reset => "nothing: already reset".into(),
                _ => format!(
                    "undo {} recorded change(s){}",
                    j.entries.len(),
                    if drifted > 0 {
                        format!("; {drifted} changed since and left alone without --force")
                    } else {
                        String::new()
                    }
                ),
            };
            StatusView {
                state: j.state.as_str(),
                cluster: j.cluster.clone(),
                server: Some(j.server.clone()),
                node_name: Some(j.node_name.clone()),
                started: Some(j.started.clone()),
                finished: j.finished.clone(),
                error: j.error.clone(),
                steps,
                rerun_join,
                rerun_reset,
            }
        }
    };
    Ok(match s.output {
        OutputFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&view).expect("plain data")
        ),
        OutputFormat::Text => {
            let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
            let mut out = format!(
                "state      {}\ncluster    {}\nserver     {}\nnode       {}\nstarted    {}\nfinished   {}\n",
                view.state,
                dash(&view.cluster),
                dash(&view.server),
                dash(&view.node_name),
                dash(&view.started),
                dash(&view.finished)
            );
            if let Some(e) = &view.error {
                out.push_str(&format!("error      {e}\n"));
            }
            if !view.steps.is_empty() {
                out.push_str("steps:\n");
                for st in &view.steps {
                    let mark = match (st.done, st.in_place) {
                        _ if st.listed_only => "listed",
                        (false, _) => "pending",
                        (true, Some(false)) => "changed since",
                        _ => "done",
                    };
                    out.push_str(&format!(
                        "  {:<13} {:<20} {}\n",
                        mark,
                        st.time.as_deref().unwrap_or("-"),
                        st.step
                    ));
                }
            }
            out.push_str(&format!(
                "a re-run of join would: {}\na reset would: {}\n",
                view.rerun_join, view.rerun_reset
            ));
            out
        }
    })
}
