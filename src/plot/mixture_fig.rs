//! The paper's Fig. 3: the gap histogram as a density, the fitted mixture density over it, and
//! each weighted component labelled balanced / imbalanced with its weight and mean.

use super::colors;
use super::font::FAMILY;
use super::histogram::{self, Histogram};
use super::Figure;
use crate::error::Result;
use crate::mixture::Mixture;
use plotters::coord::Shift;
use plotters::prelude::*;

pub struct MixtureFigure<'a> {
    pub hist: Histogram,
    pub mixture: &'a Mixture,
    pub title: String,
    pub x_label: String,
}

impl<'a> MixtureFigure<'a> {
    pub fn new(values: &[f64], mixture: &'a Mixture, bins: Option<usize>) -> Result<Self> {
        let hist = histogram::density(values, bins)?;
        let title =
            format!("Modality gap with a {}-component {} (n = {})", mixture.k(), mixture.family.name().to_uppercase(), values.len());
        Ok(MixtureFigure { hist, mixture, title, x_label: "gap (z-score)".into() })
    }
}

impl Figure for MixtureFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
        root.fill(&WHITE).map_err(e)?;
        let pad = 0.05 * (self.hist.hi - self.hist.lo);
        let (x0, x1) = (self.hist.lo - pad, self.hist.hi + pad);
        let grid: Vec<f64> = (0..=400).map(|i| x0 + (x1 - x0) * i as f64 / 400.0).collect();
        let total = self.mixture.pdf(&grid);
        let components: Vec<Vec<f64>> = (0..self.mixture.k()).map(|j| self.mixture.component_pdf(j, &grid)).collect();
        let top = self.hist.bins.iter().map(|b| b.2).chain(total.iter().copied()).fold(0.0f64, f64::max).max(1e-12) * 1.1;

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

        chart
            .draw_series(self.hist.bins.iter().map(|(l, r, d)| Rectangle::new([(*l, 0.0), (*r, *d)], colors::GREY.mix(0.45).filled())))
            .map_err(e)?
            .label("gaps (histogram)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], colors::GREY.mix(0.45).filled()));

        // The mixture first, the components over it: where the components are well apart each
        // coincides with the mixture, and must stay visible.
        chart
            .draw_series(LineSeries::new(grid.iter().copied().zip(total.iter().copied()), colors::INK.stroke_width(3)))
            .map_err(e)?
            .label("mixture density")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colors::INK.stroke_width(3)));
        let mut other = colors::CYCLE.iter().cycle();
        for (j, ys) in components.iter().enumerate() {
            let c = &self.mixture.components[j];
            let color = if j == self.mixture.balanced { colors::BLUE } else { *other.next().unwrap_or(&colors::VERMILLION) };
            let label = format!("{} (component {j}): π = {:.2}, μ = {:.2}", self.mixture.role(j), c.weight, c.mean);
            chart
                .draw_series(LineSeries::new(grid.iter().copied().zip(ys.iter().copied()), color.stroke_width(2)))
                .map_err(e)?
                .label(label)
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
