//! Line charts of per-epoch series: the paper's Fig. 6 (fused and unimodal accuracy over
//! epochs) and Fig. 1 (each modality's training loss over epochs), or any columns of a run's
//! epochs table.

use super::colors;
use super::font::FAMILY;
use super::Figure;
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One named line: (x, y) points, NaN y values skipped.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

pub struct CurvesFigure {
    pub series: Vec<Series>,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
}

impl CurvesFigure {
    pub fn new(series: Vec<Series>, title: String, x_label: String, y_label: String) -> Result<CurvesFigure> {
        let finite = series.iter().flat_map(|s| &s.points).filter(|(x, y)| x.is_finite() && y.is_finite()).count();
        if finite == 0 {
            return Err(Error::arg("no points to draw: the table is empty or its values are all null"));
        }
        Ok(CurvesFigure { series, title, x_label, y_label })
    }
}

pub fn series_color(i: usize) -> RGBColor {
    if i == 0 {
        colors::BLUE
    } else {
        colors::CYCLE[(i - 1) % colors::CYCLE.len()]
    }
}

impl Figure for CurvesFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (xs, ys) = super::padded_bounds(self.series.iter().flat_map(|s| &s.points));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(xs, ys)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(WHITE)
            .draw()
            .map_err(e)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = series_color(i);
            let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(e)?
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(e)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(colors::GREY)
            .draw()
            .map_err(e)?;
        Ok(())
    }
}
