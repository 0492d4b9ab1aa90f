//! Figures with plotters: PNG or SVG chosen by the file's extension, the bundled font, and
//! atomic writes (a failed draw never leaves a half-written image behind).
//!
//! - `font`: the bundled DejaVu Sans
//! - `histogram`: density histograms
//! - `mixture_fig`: the paper's Fig. 3, gaps with the fitted mixture
//! - `evolution`: Fig. 5, the gap distribution across refits
//! - `curves`: Fig. 6 / Fig. 1, accuracy or loss per epoch
//! - `bars`: grouped bars for ablation tables
//! - `cd`: the critical-difference diagram of average ranks across tables
//! - `embedding`: Fig. 4, PCA projections of features by class

pub mod bars;
pub mod cd;
pub mod curves;
pub mod embedding;
pub mod evolution;
pub mod font;
pub mod histogram;
pub mod mixture_fig;

use crate::error::{Error, Result};
use crate::files::write_atomically;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Figure size in pixels (SVG uses the same units).
pub const DEFAULT_SIZE: (u32, u32) = (900, 560);

/// Something that draws itself onto any plotters backend.
pub trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String>;
}

/// Draws `figure` to `path`: PNG for .png, SVG for .svg.
/// The largest side of a figure in pixels (an 8,000 x 8,000 PNG is 192 MB of pixels).
pub const MAX_SIDE: u32 = 8000;

pub fn save(figure: &impl Figure, path: &Path, size: (u32, u32)) -> Result<()> {
    font::ensure_registered();
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if ext != "png" && ext != "svg" {
        return Err(Error::arg(format!(
            "{}: figures are written as .png or .svg; name the file with one of those extensions",
            path.display()
        )));
    }
    // plotters sizes its pixel buffer as width x height x 3 in 32-bit arithmetic: a huge figure
    // overflows it (or exhausts memory) before drawing anything.
    if size.0 < 100 || size.1 < 100 || size.0 > MAX_SIDE || size.1 > MAX_SIDE {
        return Err(Error::arg(format!(
            "{}: a figure must be between 100 and {MAX_SIDE} pixels on each side, got {} x {}",
            path.display(),
            size.0,
            size.1
        )));
    }
    // A figure's folder is made on demand, as run records make theirs.
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    write_atomically(path, |tmp| {
        let drawn = if ext == "png" {
            let root = BitMapBackend::new(tmp, size).into_drawing_area();
            figure.draw(&root).and_then(|_| root.present().map_err(|e| e.to_string()))
        } else {
            let root = SVGBackend::new(tmp, size).into_drawing_area();
            figure.draw(&root).and_then(|_| root.present().map_err(|e| e.to_string()))
        };
        drawn.map_err(|msg| Error::io(path, format!("could not draw the figure: {msg}")))
    })
}

/// The x and y ranges of the finite points, each padded by 5% of its span (or by 0.5 when the
/// span is zero), for a chart's axes.
pub fn padded_bounds<'a>(points: impl IntoIterator<Item = &'a (f64, f64)>) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in points.into_iter().filter(|(x, y)| x.is_finite() && y.is_finite()) {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    let pad = |a: f64, b: f64| if b > a { 0.05 * (b - a) } else { 0.5 };
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    ((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
}

/// The palette: colour-blind safe (Okabe-Ito).
pub mod colors {
    use plotters::style::RGBColor;
    pub const BLUE: RGBColor = RGBColor(0, 114, 178);
    pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
    pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
    pub const GREEN: RGBColor = RGBColor(0, 158, 115);
    pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
    pub const SKY: RGBColor = RGBColor(86, 180, 233);
    pub const GREY: RGBColor = RGBColor(150, 150, 150);
    pub const INK: RGBColor = RGBColor(30, 30, 30);
    /// Colours for series after the first, in order.
    pub const CYCLE: [RGBColor; 5] = [VERMILLION, GREEN, PURPLE, ORANGE, SKY];
    /// Ten distinct colours for class labels (Okabe-Ito, then Tableau's brown and olive);
    /// beyond ten they repeat.
    pub const CLASSES: [RGBColor; 10] =
        [BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, RGBColor(240, 228, 66), INK, RGBColor(140, 86, 75), RGBColor(188, 189, 34)];
}
