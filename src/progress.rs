//! A progress bar on stderr for long work (prep, epochs): count, rate and ETA, plus a message
//! (e.g. the running loss). Redrawn at most every 100 ms on a terminal; when stderr is not a
//! terminal (logs, CI) it stays silent until `finish`, which prints one summary line. `quiet`
//! silences it entirely, for scripts. Under a notebook (`crate::display` installed) the bar
//! updates in place in the cell's output instead.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    id: u64,
    label: String,
    total: usize,
    done: usize,
    unit: String,
    message: String,
    started: Instant,
    last_draw: Option<Instant>,
    live: bool,
    quiet: bool,
}

/// "1:05" or "1:02:05".
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A rate in the unit that keeps it readable: per second, or per minute or hour for slow work
/// (a sweep's runs), where "0.0 runs/s" would say nothing.
pub fn speed(per_second: f64, unit: &str) -> String {
    if per_second >= 1.0 || per_second == 0.0 {
        format!("{per_second:.1} {unit}/s")
    } else if per_second * 60.0 >= 1.0 {
        format!("{:.1} {unit}/min", per_second * 60.0)
    } else {
        format!("{:.1} {unit}/h", per_second * 3600.0)
    }
}

impl Progress {
    pub fn new(label: impl Into<String>, total: usize, unit: impl Into<String>, quiet: bool) -> Progress {
        Progress {
            id: crate::display::next_id(),
            label: label.into(),
            total,
            done: 0,
            unit: unit.into(),
            message: String::new(),
            started: Instant::now(),
            last_draw: None,
            live: !quiet && (crate::display::active() || std::io::stderr().is_terminal()),
            quiet,
        }
    }

    pub fn set_message(&mut self, message: impl Into<String>) {
        self.message = message.into();
    }

    pub fn inc(&mut self, n: usize) {
        self.done += n;
        if self.live && self.last_draw.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
            self.draw();
        }
    }

    /// Items per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// The current line: `label [#####.....] 12/100 3.4 clips/s ETA 0:25 message`.
    pub fn line(&self) -> String {
        const WIDTH: usize = 24;
        let filled = (self.done * WIDTH).checked_div(self.total).map_or(WIDTH, |f| f.min(WIDTH));
        let rate = self.rate();
        let eta = if rate > 0.0 && self.total > self.done {
            clock(Duration::from_secs_f64((self.total - self.done) as f64 / rate))
        } else {
            "-".into()
        };
        let mut line = format!(
            "{} [{}{}] {}/{} {} ETA {eta}",
            self.label,
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            self.done,
            self.total,
            speed(rate, &self.unit)
        );
        if !self.message.is_empty() {
            line.push(' ');
            line.push_str(&self.message);
        }
        line
    }

    fn draw(&mut self) {
        self.last_draw = Some(Instant::now());
        if crate::display::progress(self.id, &self.line(), false) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", self.line());
        let _ = err.flush();
    }

    /// Ends the bar with a summary line (elapsed time instead of the ETA).
    pub fn finish(&mut self) {
        if self.quiet {
            return;
        }
        let elapsed = clock(self.started.elapsed());
        let summary = format!(
            "{} {}/{} in {elapsed} ({}){}",
            self.label,
            self.done,
            self.total,
            speed(self.rate(), &self.unit),
            if self.message.is_empty() { String::new() } else { format!(" {}", self.message) }
        );
        if crate::display::progress(self.id, &summary, true) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.live { writeln!(err, "\r\x1b[2K{summary}") } else { writeln!(err, "{summary}") };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_counts_rate_and_eta() {
        let mut p = Progress::new("prep", 4, "clips", true);
        p.inc(1);
        p.set_message("loss 0.5");
        let line = p.line();
        assert!(line.starts_with("prep [######..................] 1/4 "), "{line}");
        assert!(line.contains("clips/s ETA ") && line.ends_with("loss 0.5"), "{line}");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(clock(Duration::from_secs(65)), "1:05");
        assert_eq!(speed(3.44, "clips"), "3.4 clips/s");
        assert_eq!(speed(0.5, "runs"), "30.0 runs/min");
        assert_eq!(speed(1.0 / 1800.0, "runs"), "2.0 runs/h");
    }
}
