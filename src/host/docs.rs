//! The documentation of every registered function: one entry per name and area (a name such as
//! `select` can mean one thing for tensors and another for tables), grouped by area.
//! `help()` in the REPL and docs/api.md are both generated from this table, and a test fails
//! when the engine has a function this table does not describe.

use std::fmt::Write;

#[derive(Clone, Debug)]
pub struct FnDoc {
    pub area: &'static str,
    pub name: &'static str,
    /// How a call looks, e.g. `t.sum(dim?, keepdim?)`.
    pub usage: &'static str,
    pub summary: &'static str,
    pub example: &'static str,
}

#[derive(Default, Debug)]
pub struct Docs {
    entries: Vec<FnDoc>,
}

impl Docs {
    /// Records the doc of `name` in `area`; documenting one name twice in an area is a
    /// programming error.
    pub fn add(&mut self, area: &'static str, name: &'static str, usage: &'static str, summary: &'static str, example: &'static str) {
        debug_assert!(!self.entries.iter().any(|d| d.name == name && d.area == area), "documented twice: {name} ({area})");
        self.entries.push(FnDoc { area, name, usage, summary, example });
    }

    pub fn get(&self, name: &str) -> Option<&FnDoc> {
        self.entries.iter().find(|d| d.name == name)
    }

    pub fn entries(&self) -> &[FnDoc] {
        &self.entries
    }

    /// Areas in registration order.
    pub fn areas(&self) -> Vec<&'static str> {
        let mut areas = Vec::new();
        for d in &self.entries {
            if !areas.contains(&d.area) {
                areas.push(d.area);
            }
        }
        areas
    }

    /// The `help()` listing: every name, grouped by area.
    pub fn listing(&self) -> String {
        let mut out = String::from("gapscope functions (help(\"name\") for details):\n");
        for area in self.areas() {
            let names: Vec<&str> = self.entries.iter().filter(|d| d.area == area).map(|d| d.name).collect();
            let _ = writeln!(out, "  {area:<10} {}", names.join(" "));
        }
        out
    }

    /// The `help("name")` text; `signatures` are the engine's typed overloads of that name.
    pub fn detail(&self, name: &str, signatures: &[String]) -> Option<String> {
        let all: Vec<&FnDoc> = self.entries.iter().filter(|d| d.name == name).collect();
        let d = *all.first()?;
        let mut out = String::new();
        for other in &all {
            let _ = write!(out, "{}\n  {}\n", other.usage, other.summary);
        }
        if !signatures.is_empty() {
            out.push_str("  overloads:\n");
            for s in signatures {
                let _ = writeln!(out, "    {s}");
            }
        }
        let _ = writeln!(out, "  example: {}", d.example);
        Some(out)
    }

    /// docs/api.md, in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "# gapscope API\n\nGenerated from the function registrations by `cargo run -- api > docs/api.md`\n\
             (a test fails when this file is stale or a registered function has no doc).\n",
        );
        for area in self.areas() {
            let _ = write!(out, "\n## {area}\n\n| function | what it does | example |\n|---|---|---|\n");
            for d in self.entries.iter().filter(|d| d.area == area) {
                let cell = |s: &str| s.replace('|', "\\|");
                let _ = writeln!(out, "| `{}` | {} | `{}` |", cell(d.usage), cell(d.summary), cell(d.example));
            }
        }
        out
    }
}
