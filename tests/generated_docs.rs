//! The man pages (`docs/man/`) and shell completions (`completions/`) are
//! generated from the clap definitions (`attach_node::cli::Cli`) and
//! committed, so packages and the release need no generator at build time
//! and the binary carries none (clap_mangen and clap_complete are
//! dev-dependencies only). This test regenerates them in memory and fails
//! when a committed copy differs, is missing or is left over:
//!
//!     UPDATE_GENERATED=1 cargo test --test generated_docs
//!
//! rewrites them. It also renders every page with `man --warnings` (what
//! lintian runs) or groff and loads the completions into their shells.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use attach_node::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;

const BIN: &str = "attach-node";
const MAN_DIR: &str = "docs/man";
const COMPLETIONS_DIR: &str = "completions";
const REFRESH: &str = "run `UPDATE_GENERATED=1 cargo test --test generated_docs` to refresh";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Extra sections for the main page, in roff. Only facts that do not move
/// with a flag: the flags themselves come from clap.
const MAIN_EXTRA: &str = r#".SH "DEFAULT SUBCOMMAND"
Flags without a subcommand (\fBattach\-node \-\-openapi\-token\-file\fR \fIFILE\fR \fB\-\-endpoint\fR ...), as \fBattach_node.sh\fR was run, mean \fBjoin\fR.
.SH FILES
.TP
\fI/var/lib/attach\-node/journal.json\fR
What \fBjoin\fR changed and what was there before; \fBreset\fR, \fBstatus\fR and \fBuninstall\fR read it.
.TP
\fI/etc/attach\-node/firstboot.env\fR
Settings (\fBATTACH_NODE_*\fR variables, root only) of \fBattach\-node\-firstboot.service\fR, which runs \fBattach\-node join\fR once at first boot.
.TP
\fI/var/lib/attach\-node/firstboot.done\fR
Written after the first\-boot join succeeded; the unit does not run again while it exists.
.SH "SEE ALSO"
\fBattach\-node\-join\fR(1), \fBattach\-node\-discover\fR(1), \fBattach\-node\-reset\fR(1), \fBattach\-node\-status\fR(1), \fBattach\-node\-uninstall\fR(1), \fBsystemctl\fR(1)
"#;

/// Every generated file: its path under the repository and its bytes.
fn generate() -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();

    // Man pages: attach-node.1 and one page per visible subcommand, named
    // as clap_mangen::generate_to names them (attach-node-join.1, ...).
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let main = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    main.render(&mut page).expect("render the man page");
    page.extend_from_slice(MAIN_EXTRA.as_bytes());
    files.insert(Path::new(MAN_DIR).join(main.get_filename()), page);
    for sub in subcommands {
        let man = clap_mangen::Man::new(sub);
        let mut page = Vec::new();
        man.render(&mut page)
            .expect("render a subcommand's man page");
        page.extend_from_slice(b".SH \"SEE ALSO\"\n\\fBattach\\-node\\fR(1)\n");
        files.insert(Path::new(MAN_DIR).join(man.get_filename()), page);
    }

    for (shell, ext) in [
        (Shell::Bash, "bash"),
        (Shell::Zsh, "zsh"),
        (Shell::Fish, "fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
        files.insert(Path::new(COMPLETIONS_DIR).join(format!("{BIN}.{ext}")), out);
    }
    files
}

/// The files now in the generated directories (to catch leftovers).
fn committed_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for dir in [MAN_DIR, COMPLETIONS_DIR] {
        let Ok(entries) = fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for e in entries {
            let e = e.expect("read a generated directory");
            paths.push(Path::new(dir).join(e.file_name()));
        }
    }
    paths
}

#[test]
fn committed_copies_match_the_clap_definitions() {
    let files = generate();
    if std::env::var_os("UPDATE_GENERATED").is_some_and(|v| v == "1") {
        for stale in committed_paths() {
            if !files.contains_key(&stale) {
                fs::remove_file(repo().join(&stale)).expect("remove a stale generated file");
                eprintln!("removed {}", stale.display());
            }
        }
        for (path, bytes) in &files {
            let full = repo().join(path);
            fs::create_dir_all(full.parent().unwrap()).expect("create a generated directory");
            if fs::read(&full).ok().as_deref() != Some(bytes.as_slice()) {
                fs::write(&full, bytes).expect("write a generated file");
                eprintln!("wrote {}", path.display());
            }
        }
        return;
    }

    let mut problems = Vec::new();
    for (path, bytes) in &files {
        match fs::read(repo().join(path)) {
            Ok(committed) if committed == *bytes => {}
            Ok(committed) => {
                let old = String::from_utf8_lossy(&committed);
                let new = String::from_utf8_lossy(bytes);
                let first = old
                    .lines()
                    .zip(new.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| old.lines().count().min(new.lines().count()));
                problems.push(format!(
                    "{} differs from the clap definitions (first at line {}:\n  committed: {:?}\n  generated: {:?})",
                    path.display(),
                    first + 1,
                    old.lines().nth(first).unwrap_or("<end of file>"),
                    new.lines().nth(first).unwrap_or("<end of file>"),
                ));
            }
            Err(e) => problems.push(format!("{} cannot be read: {e}", path.display())),
        }
    }
    for path in committed_paths() {
        if !files.contains_key(&path) {
            problems.push(format!("{} is not generated any more", path.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "generated docs are out of date: {REFRESH}\n{}",
        problems.join("\n")
    );
}

/// Missing tools skip a check, saying so; `ATTACH_NODE_E2E=require` (CI)
/// makes the man-page check mandatory.
fn skip_or_fail(what: &str, why: &str) {
    if std::env::var("ATTACH_NODE_E2E").as_deref() == Ok("require") {
        panic!("ATTACH_NODE_E2E=require, but {what} cannot run: {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIP {what}: {why}");
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Each page renders without a warning, the way lintian checks it
/// (`man --warnings`), or with `groff -ww` where man-db is missing.
#[test]
fn man_pages_render_without_warnings() {
    let pages: Vec<PathBuf> = generate()
        .into_keys()
        .filter(|p| p.starts_with(MAN_DIR))
        .collect();
    assert!(pages.len() >= 6, "{pages:?}");
    let use_man = have("man");
    if !use_man && !have("groff") {
        skip_or_fail(
            "man page rendering",
            "neither man nor groff is installed (apt-get install man-db)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in generate()
        .into_iter()
        .filter(|(p, _)| p.starts_with(MAN_DIR))
    {
        let file = dir.path().join(path.file_name().unwrap());
        fs::write(&file, bytes).unwrap();
        let out = if use_man {
            Command::new("man")
                .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
                .arg(&file)
                .env("LC_ALL", "C.UTF-8")
                .env("MANROFFSEQ", "")
                .env("MANWIDTH", "80")
                .output()
        } else {
            Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(&file)
                .output()
        }
        .expect("run man or groff");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{} renders with warnings:\n{stderr}",
            path.display()
        );
    }
}

/// The completions load: bash registers a completion for attach-node; zsh
/// and fish (when installed) parse theirs.
#[test]
fn completions_load_in_their_shells() {
    let files = generate();
    let script =
        |ext: &str| files[&Path::new(COMPLETIONS_DIR).join(format!("{BIN}.{ext}"))].clone();
    let dir = tempfile::tempdir().unwrap();
    let write = |ext: &str| {
        let p = dir.path().join(format!("{BIN}.{ext}"));
        fs::write(&p, script(ext)).unwrap();
        p
    };

    let bash = write("bash");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source '{}' && complete -p {BIN}", bash.display()))
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with(BIN) && out.stderr.is_empty(),
        "bash completion does not load: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for (shell, ext, args) in [
        ("zsh", "zsh", &["-n"][..]),
        ("fish", "fish", &["--no-execute"][..]),
    ] {
        if !have(shell) {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {shell} completion syntax: {shell} is not installed"
            );
            continue;
        }
        let out = Command::new(shell)
            .args(args)
            .arg(write(ext))
            .output()
            .expect("run the shell");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shell} does not parse its completion:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
