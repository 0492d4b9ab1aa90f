//! The documentation of every registered function: one entry per name, grouped by area.
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
    /// Records the doc of `name`; registering one name twice is a programming error.
    pub fn add(&mut self, area: &'static str, name: &'static str, usage: &'static str, summary: &'static str, example: &'static str) {
        debug_assert!(self.get(name).is_none(), "documented twice: {name}");
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
        let d = self.get(name)?;
        let mut out = format!("{}\n  {}\n", d.usage, d.summary);
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
