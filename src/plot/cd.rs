//! The critical-difference diagram (Demšar, JMLR 2006, Fig. 1 and 2): an axis of average ranks
//! (1, the best, on the left), each row's rank marked and its name led out to the side, the
//! Nemenyi critical difference drawn above the axis, and thick bars joining the groups of rows
//! whose ranks differ by less than it (rows a bar joins are not distinguishable).

use super::font::FAMILY;
use super::Figure;
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub struct CdFigure {
    pub names: Vec<String>,
    pub ranks: Vec<f64>,
    pub cd: f64,
    pub title: String,
}

impl CdFigure {
    pub fn new(names: Vec<String>, ranks: Vec<f64>, cd: f64, title: String) -> Result<CdFigure> {
        if names.len() < 2 || names.len() != ranks.len() || ranks.iter().any(|r| !r.is_finite()) || !cd.is_finite() {
            return Err(Error::arg("a critical-difference diagram needs two or more rows, each with a finite average rank"));
        }
        Ok(CdFigure { names, ranks, cd, title })
    }

    /// The groups a bar joins: maximal runs of rows (by rank) whose extreme ranks differ by less
    /// than the critical difference, each of two or more rows, none inside another.
    pub fn groups(&self) -> Vec<(usize, usize)> {
        let order = self.order();
        let r: Vec<f64> = order.iter().map(|&i| self.ranks[i]).collect();
        let mut out: Vec<(usize, usize)> = Vec::new();
        for i in 0..r.len() {
            let mut j = i;
            while j + 1 < r.len() && r[j + 1] - r[i] < self.cd {
                j += 1;
            }
            if j > i && !out.iter().any(|&(a, b)| a <= i && j <= b) {
                out.push((i, j));
            }
        }
        out
    }

    /// Row indices by average rank, best first.
    fn order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| self.ranks[a].total_cmp(&self.ranks[b]));
        order
    }
}

impl Figure for CdFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (w, h) = root.dim_in_pixel();
        let (w, h) = (w as i32, h as i32);
        let k = self.names.len();
        let low = 1.0;
        let high = (k as f64).max(self.ranks.iter().cloned().fold(1.0, f64::max)).ceil();
        // The axis spans the middle of the figure; the names sit in the margins either side.
        let (left, right) = (w / 4, w - w / 4);
        let x = |rank: f64| left + ((rank - low) / (high - low).max(1e-9) * (right - left) as f64).round() as i32;
        let axis_y = 90;
        let black = BLACK.stroke_width(2);
        let thin = BLACK.stroke_width(1);
        let text = |size: u32, h: HPos, v: VPos| TextStyle::from((FAMILY, size).into_font()).pos(Pos::new(h, v)).color(&BLACK);
        root.draw(&Text::new(self.title.clone(), (w / 2, 16), text(20, HPos::Center, VPos::Top))).map_err(e)?;
        root.draw(&PathElement::new(vec![(x(low), axis_y), (x(high), axis_y)], black)).map_err(e)?;
        for t in (low as i32)..=(high as i32) {
            let xt = x(t as f64);
            root.draw(&PathElement::new(vec![(xt, axis_y - 8), (xt, axis_y)], black)).map_err(e)?;
            root.draw(&Text::new(t.to_string(), (xt, axis_y - 10), text(14, HPos::Center, VPos::Bottom))).map_err(e)?;
        }
        // The critical difference as a bar from rank 1, above the axis.
        let cd_y = 50;
        let (c0, c1) = (x(low), x(low + self.cd));
        root.draw(&PathElement::new(vec![(c0, cd_y), (c1, cd_y)], black)).map_err(e)?;
        for xc in [c0, c1] {
            root.draw(&PathElement::new(vec![(xc, cd_y - 5), (xc, cd_y + 5)], black)).map_err(e)?;
        }
        root.draw(&Text::new(format!("CD = {:.2}", self.cd), ((c0 + c1) / 2, cd_y - 6), text(14, HPos::Center, VPos::Bottom)))
            .map_err(e)?;
        // Names: the better half led out to the left, the rest to the right, one line each.
        let order = self.order();
        let half = k.div_ceil(2);
        let groups = self.groups();
        let bars_bottom = axis_y + 14 + 8 * groups.len() as i32;
        let step = ((h - bars_bottom - 30) / (half as i32).max(1)).clamp(14, 30);
        for (pos, &i) in order.iter().enumerate() {
            let xr = x(self.ranks[i]);
            // The outermost names sit lowest on each side, so the leader lines never cross.
            let line = if pos < half { pos } else { k - 1 - pos };
            let y = bars_bottom + 10 + step * line as i32;
            let edge = if pos < half { left - 20 } else { right + 20 };
            root.draw(&PathElement::new(vec![(xr, axis_y), (xr, y), (edge, y)], thin)).map_err(e)?;
            let label = format!("{} ({:.2})", self.names[i], self.ranks[i]);
            let (hpos, tx) = if pos < half { (HPos::Right, edge - 4) } else { (HPos::Left, edge + 4) };
            root.draw(&Text::new(label, (tx, y), text(14, hpos, VPos::Center))).map_err(e)?;
        }
        // Groups not distinguishable: thick bars under the axis.
        for (g, &(a, b)) in groups.iter().enumerate() {
            let y = axis_y + 12 + 8 * g as i32;
            let (xa, xb) = (x(self.ranks[order[a]]) - 4, x(self.ranks[order[b]]) + 4);
            root.draw(&PathElement::new(vec![(xa, y), (xb, y)], BLACK.stroke_width(4))).map_err(e)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_join_rows_closer_than_the_critical_difference() {
        let names = ["a", "b", "c", "d"].map(String::from).to_vec();
        // Sorted: a 1.0, b 1.5, c 3.0, d 3.5 with CD 1.0: {a, b} and {c, d}; CD 2.1: {a, b, c}, {b, c, d}.
        let f = CdFigure::new(names.clone(), vec![1.0, 1.5, 3.0, 3.5], 1.0, String::new()).unwrap();
        assert_eq!(f.groups(), vec![(0, 1), (2, 3)]);
        let f = CdFigure::new(names.clone(), vec![3.5, 3.0, 1.5, 1.0], 2.1, String::new()).unwrap();
        assert_eq!(f.groups(), vec![(0, 2), (1, 3)]);
        let f = CdFigure::new(names, vec![1.0, 2.0, 3.0, 4.0], 0.5, String::new()).unwrap();
        assert!(f.groups().is_empty());
    }
}
