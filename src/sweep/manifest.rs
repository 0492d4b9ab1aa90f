//! The manifest: a sweep's plan on disk (`DIR/sweep.tsv`), one line per run with its folder
//! (the key: a rerun skips the runs whose folder holds a complete record) and the full
//! `gapscope run ... --set ...` command that runs it alone. A few `# ` header lines say which
//! script and settings it was planned from; a checksum line catches hand edits, since a task
//! executes what the manifest says.

use crate::checksum::checksum;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub const FILE: &str = "sweep.tsv";

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// The run's folder relative to the sweep's output folder, e.g. `ogm-ge/seed2`.
    pub key: String,
    /// The shell command that runs it alone (what `--backend print` prints).
    pub command: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The grid's script, absolute.
    pub script: PathBuf,
    /// A checksum of the script's text when it was planned ("" from manifests that predate it):
    /// a later plan from an edited script warns that the complete runs came from the old one.
    pub script_hash: String,
    /// The user's `--set KEY=VALUE` settings, as given (out and the sweep's own are added).
    pub sets: Vec<String>,
    /// The output folder, absolute.
    pub out: PathBuf,
    /// The gapscope binary that planned it, which every task runs (on a shared filesystem).
    pub exe: PathBuf,
    pub runs: Vec<PlannedRun>,
}

/// `s` as one shell word.
pub fn quote(s: &str) -> String {
    let safe = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Manifest {
    pub fn path(out: &Path) -> PathBuf {
        out.join(FILE)
    }

    /// The `--set` arguments of one run (or of the gather step when `key` is None).
    pub fn script_sets(&self, key: Option<&str>) -> Vec<String> {
        let mut sets = self.sets.clone();
        sets.push(format!("out={}", self.out.display()));
        match key {
            Some(k) => sets.push(format!("{}={k}", super::RUN_PARAM)),
            None => sets.push(format!("{}=true", super::GATHER_PARAM)),
        }
        sets
    }

    /// The `gapscope run` command line of one run (None: the gather step).
    pub fn command(&self, key: Option<&str>) -> String {
        let mut words = vec![quote(&self.exe.display().to_string()), "run".into(), quote(&self.script.display().to_string())];
        for s in self.script_sets(key) {
            words.push("--set".into());
            words.push(quote(&s));
        }
        words.join(" ")
    }

    /// The plan's identity: the same script and settings (in any order) mean the same sweep.
    pub fn same_sweep(&self, other: &Manifest) -> bool {
        let sorted = |m: &Manifest| {
            let mut s = m.sets.clone();
            s.sort();
            s
        };
        self.script == other.script && sorted(self) == sorted(other)
    }

    pub fn run(&self, key: &str) -> Option<&PlannedRun> {
        self.runs.iter().find(|r| r.key == key)
    }

    fn body(&self) -> String {
        let mut s = String::new();
        s.push_str("# gapscope sweep manifest: one run per line, its folder under this one and the command that runs it.\n");
        s.push_str("# Written by `gapscope sweep`; do not edit (a checksum guards it): plan again with gapscope sweep SCRIPT --out DIR.\n");
        s.push_str(&format!("# script\t{}\n", self.script.display()));
        if !self.script_hash.is_empty() {
            s.push_str(&format!("# script_hash\t{}\n", self.script_hash));
        }
        for set in &self.sets {
            s.push_str(&format!("# set\t{set}\n"));
        }
        s.push_str(&format!("# out\t{}\n", self.out.display()));
        s.push_str(&format!("# exe\t{}\n", self.exe.display()));
        s.push_str("run\tcommand\n");
        for r in &self.runs {
            s.push_str(&format!("{}\t{}\n", r.key, r.command));
        }
        s
    }

    /// Writes `out/sweep.tsv` atomically (a task reading it meanwhile sees the old or the new).
    pub fn write(&self) -> Result<()> {
        let body = self.body();
        let text = format!("{body}# checksum\t{}\n", checksum(&body));
        crate::files::write_atomically(&Self::path(&self.out), |tmp| {
            std::fs::write(tmp, &text).map_err(|e| crate::error::Error::io(tmp, e))
        })?;
        Ok(())
    }

    /// Reads `out/sweep.tsv`, refusing one that was edited by hand or is not a manifest.
    pub fn read(out: &Path) -> Result<Manifest> {
        let path = Self::path(out);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("{} has no sweep manifest ({FILE}): plan one with `gapscope sweep SCRIPT --out {}`", out.display(), out.display())
        })?;
        let replan =
            format!("plan it again with `gapscope sweep SCRIPT --out {} --replan` (complete runs are kept, not rerun)", out.display());
        let Some(at) = text.rfind("# checksum\t") else {
            bail!("{} is not a complete sweep manifest (no checksum line): {replan}", path.display());
        };
        let (body, tail) = text.split_at(at);
        if tail.trim_end().strip_prefix("# checksum\t") != Some(checksum(body).as_str()) {
            bail!("{} was edited by hand (its checksum does not match), and tasks run what it says: {replan}", path.display());
        }
        let mut m = Manifest {
            script: PathBuf::new(),
            script_hash: String::new(),
            sets: Vec::new(),
            out: PathBuf::new(),
            exe: PathBuf::new(),
            runs: Vec::new(),
        };
        let mut in_runs = false;
        for line in body.lines() {
            if in_runs {
                let (key, command) =
                    line.split_once('\t').with_context(|| format!("{}: a run line without a tab: {line:?}", path.display()))?;
                m.runs.push(PlannedRun { key: key.into(), command: command.into() });
            } else if line == "run\tcommand" {
                in_runs = true;
            } else if let Some((k, v)) = line.strip_prefix("# ").and_then(|l| l.split_once('\t')) {
                match k {
                    "script" => m.script = v.into(),
                    "script_hash" => m.script_hash = v.into(),
                    "set" => m.sets.push(v.into()),
                    "out" => m.out = v.into(),
                    "exe" => m.exe = v.into(),
                    _ => {}
                }
            }
        }
        if m.script.as_os_str().is_empty() || m.exe.as_os_str().is_empty() || !in_runs {
            bail!("{} lacks its script, binary or run lines: {replan}", path.display());
        }
        // Moved or copied folders keep working: the runs are found where the manifest is.
        m.out = out.to_path_buf();
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(out: &Path) -> Manifest {
        let mut m = Manifest {
            script: "/x/table2.rhai".into(),
            script_hash: "00ff".into(),
            sets: vec!["dataset=mfeat".into(), "note=it's".into()],
            out: out.into(),
            exe: "/bin/gapscope".into(),
            runs: vec![],
        };
        for key in ["concat/seed0", "d&r/seed0", "tau=0 (all)/seed1"] {
            m.runs.push(PlannedRun { key: key.into(), command: m.command(Some(key)) });
        }
        m
    }

    #[test]
    fn round_trips_and_refuses_edits() {
        let dir = std::env::temp_dir().join(format!("gapscope-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = sample(&dir);
        m.write().unwrap();
        assert_eq!(Manifest::read(&dir).unwrap(), m);
        let path = Manifest::path(&dir);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("seed1", "seed2")).unwrap();
        let err = Manifest::read(&dir).unwrap_err().to_string();
        assert!(err.contains("edited by hand") && err.contains("--replan"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn commands_quote_for_the_shell() {
        let m = sample(Path::new("/o"));
        assert_eq!(
            m.runs[2].command,
            "/bin/gapscope run /x/table2.rhai --set dataset=mfeat --set 'note=it'\\''s' --set out=/o --set 'sweep_run=tau=0 (all)/seed1'"
        );
        assert_eq!(quote("d&r/seed0"), "'d&r/seed0'");
    }
}
