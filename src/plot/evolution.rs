//! The paper's Fig. 5: how the gap distribution moves across refits, one density outline per
//! refit epoch on shared bins, coloured from light (first refit) to dark (last).

use super::font::FAMILY;
use super::histogram::auto_bins;
use super::{colors, Figure};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

pub struct EvolutionFigure {
    /// (refit epoch, density per bin).
    pub curves: Vec<(i64, Vec<f64>)>,
    pub edges: Vec<f64>,
    pub title: String,
    pub x_label: String,
}

impl EvolutionFigure {
    /// `groups`: (epoch, values) per refit.
    pub fn new(groups: Vec<(i64, Vec<f64>)>, x_label: String) -> Result<EvolutionFigure> {
        let all: Vec<f64> = groups.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite()).collect();
        if all.is_empty() {
            return Err(Error::arg("no gaps to draw: the samples table is empty"));
        }
        let mut sorted = all.clone();
        sorted.sort_by(f64::total_cmp);
        let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let bins = (auto_bins(&sorted) / groups.len().max(1)).clamp(20, 60);
        let w = (hi - lo) / bins as f64;
        let edges: Vec<f64> = (0..=bins).map(|i| lo + w * i as f64).collect();
        let curves = groups
            .into_iter()
            .map(|(epoch, v)| {
                let finite: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
                let mut d = vec![0.0; bins];
                for x in &finite {
                    let i = (((x - lo) / w) as usize).min(bins - 1);
                    d[i] += 1.0;
                }
                let n = finite.len().max(1) as f64;
                (epoch, d.into_iter().map(|c| c / (n * w)).collect())
            })
            .collect();
        Ok(EvolutionFigure { curves, edges, title: "Gap distribution across refits".into(), x_label })
    }
}

impl Figure for EvolutionFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
        root.fill(&WHITE).map_err(e)?;
        let top = self.curves.iter().flat_map(|(_, d)| d.iter().copied()).fold(0.0f64, f64::max).max(1e-12) * 1.1;
        let (x0, x1) = (self.edges[0], self.edges[self.edges.len() - 1]);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc("density")
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(WHITE)
            .draw()
            .map_err(e)?;
        let k = self.curves.len();
        for (j, (epoch, d)) in self.curves.iter().enumerate() {
            // From sky blue to deep blue as refits go on.
            let t = if k > 1 { j as f64 / (k - 1) as f64 } else { 1.0 };
            let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
            let (a, b) = (colors::SKY, RGBColor(0, 45, 110));
            let color = RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2));
            let mut pts = Vec::with_capacity(2 * d.len());
            for (i, v) in d.iter().enumerate() {
                pts.push((self.edges[i], *v));
                pts.push((self.edges[i + 1], *v));
            }
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(e)?
                .label(format!("refit at epoch {epoch}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(colors::GREY)
            .draw()
            .map_err(e)?;
        Ok(())
    }
}
