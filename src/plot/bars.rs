//! Grouped bars for an ablation table: one group per row (a configuration), one bar per
//! metric, with optional error bars (± one standard deviation over seeds).

use super::curves::series_color;
use super::font::FAMILY;
use super::{colors, Figure};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

pub struct BarsFigure {
    /// Group labels (x axis).
    pub groups: Vec<String>,
    /// Per metric: its label, a value per group, and an optional error per group.
    pub metrics: Vec<(String, Vec<f64>, Option<Vec<f64>>)>,
    pub title: String,
    pub y_label: String,
}

impl BarsFigure {
    pub fn new(
        groups: Vec<String>,
        metrics: Vec<(String, Vec<f64>, Option<Vec<f64>>)>,
        title: String,
        y_label: String,
    ) -> Result<BarsFigure> {
        if groups.is_empty() || metrics.is_empty() {
            return Err(Error::arg("no bars to draw: the table is empty"));
        }
        Ok(BarsFigure { groups, metrics, title, y_label })
    }
}

impl Figure for BarsFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
        root.fill(&WHITE).map_err(e)?;
        let top = self
            .metrics
            .iter()
            .flat_map(|(_, v, err)| v.iter().enumerate().map(move |(i, y)| y + err.as_ref().map_or(0.0, |e| e[i].max(0.0))))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-9)
            // Head-room for the legend (one line per metric) above the tallest bar.
            * (1.1 + 0.07 * self.metrics.len() as f64);
        // Negative bars hang below zero: the axis reaches down to the lowest one (and its error bar).
        let bottom = self
            .metrics
            .iter()
            .flat_map(|(_, v, err)| v.iter().enumerate().map(move |(i, y)| y - err.as_ref().map_or(0.0, |e| e[i].max(0.0))))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::min)
            * 1.1;
        let n = self.groups.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..n - 0.5, bottom..top)
            .map_err(e)?;
        let groups = self.groups.clone();
        chart
            .configure_mesh()
            .x_labels(self.groups.len())
            .x_label_formatter(&move |x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < groups.len() {
                    groups[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_desc(&self.y_label)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(WHITE)
            .disable_x_mesh()
            .draw()
            .map_err(e)?;
        let k = self.metrics.len() as f64;
        let width = 0.8 / k;
        for (j, (label, values, errors)) in self.metrics.iter().enumerate() {
            let color = series_color(j);
            let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
            chart
                .draw_series(
                    values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(i, v)| Rectangle::new([(left(i) + 0.01, 0.0), (left(i) + width - 0.01, *v)], color.filled())),
                )
                .map_err(e)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], color.filled()));
            if let Some(errs) = errors {
                for (i, (v, s)) in values.iter().zip(errs).enumerate().filter(|(_, (v, s))| v.is_finite() && s.is_finite()) {
                    let x = left(i) + width / 2.0;
                    chart
                        .draw_series(std::iter::once(PathElement::new(vec![(x, v - s), (x, v + s)], colors::INK.stroke_width(2))))
                        .map_err(e)?;
                }
            }
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
