//! The paper's Fig. 4: 2-D embeddings of features, one panel per feature set (each modality's
//! encoder and the fused one), coloured by class. t-SNE as the paper draws it (crate::manifold,
//! scikit-learn's algorithm), or PCA (the top two principal components): deterministic and
//! milliseconds, showing linear class separation rather than local neighbourhoods.

use super::colors;
use super::font::FAMILY;
use super::Figure;
use crate::error::{Error, Result};
use crate::tensor::{check, Kind, Tensor};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Rows of `x` [n, d] projected on their top two principal components.
pub fn pca2(x: &Tensor) -> Result<Vec<(f64, f64)>> {
    let op = "pca";
    let size = x.size();
    if size.len() != 2 || size[0] < 2 {
        return Err(Error::arg(format!("{op}: expected features [n, d] with n >= 2, got {size:?}")));
    }
    let x = check(op, x.f_to_kind(Kind::Double).and_then(|t| t.f_to_device(tch::Device::Cpu)))?;
    let centered = check(op, x.f_mean_dim([0i64].as_slice(), true, Kind::Double).and_then(|m| x.f_sub(&m)))?;
    let (u, s, _) = check(op, centered.f_svd(true, true))?;
    let k = s.size()[0].min(2);
    let proj = check(op, u.f_narrow(1, 0, k).and_then(|u| u.f_mul(&s.f_narrow(0, 0, k)?)))?;
    let proj = if k < 2 {
        check(
            op,
            Tensor::f_cat(
                &[
                    proj.shallow_clone(),
                    proj.f_zeros_like().map_err(|e| Error::torch(op, e))?.f_narrow(1, 0, 2 - k).map_err(|e| Error::torch(op, e))?,
                ],
                1,
            ),
        )?
    } else {
        proj
    };
    let v = check(
        op,
        Vec::<f64>::try_from(&proj.f_contiguous().map_err(|e| Error::torch(op, e))?.f_view([-1]).map_err(|e| Error::torch(op, e))?),
    )?;
    Ok(v.chunks(2).map(|c| (c[0], c[1])).collect())
}

pub struct EmbeddingFigure {
    /// Per panel: its title and the projected points.
    pub panels: Vec<(String, Vec<(f64, f64)>)>,
    pub labels: Vec<i64>,
    pub title: String,
}

/// How features become 2-D points.
#[derive(Clone, Debug)]
pub enum Projection {
    Tsne(crate::manifold::TsneOptions),
    Pca,
}

impl EmbeddingFigure {
    pub fn new(sets: Vec<(String, Tensor)>, labels: Vec<i64>, projection: &Projection) -> Result<EmbeddingFigure> {
        if sets.is_empty() {
            return Err(Error::arg("no features to draw"));
        }
        let mut panels = Vec::new();
        for (name, x) in sets {
            if x.size().first().copied().unwrap_or(0) != labels.len() as i64 {
                return Err(Error::arg(format!(
                    "features \"{name}\" have {} rows but there are {} labels",
                    x.size().first().copied().unwrap_or(0),
                    labels.len()
                )));
            }
            let points = match projection {
                Projection::Pca => pca2(&x)?,
                Projection::Tsne(opts) => {
                    let e = crate::manifold::tsne(&x, opts).map_err(|e| Error::arg(format!("features \"{name}\": {e}")))?.embedding;
                    let v = check("tsne", e.f_to_kind(Kind::Double).and_then(|t| t.f_view([-1])).and_then(|t| Vec::<f64>::try_from(&t)))?;
                    v.chunks(2).map(|c| (c[0], c[1])).collect()
                }
            };
            panels.push((name, points));
        }
        let how = match projection {
            Projection::Pca => "first two principal components",
            Projection::Tsne(_) => "t-SNE",
        };
        Ok(EmbeddingFigure { panels, labels, title: format!("Features, {how}, coloured by class") })
    }
}

impl Figure for EmbeddingFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        let e = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
        root.fill(&WHITE).map_err(e)?;
        let root = root.titled(&self.title, (FAMILY, 20)).map_err(e)?;
        let areas = root.split_evenly((1, self.panels.len()));
        for (area, (name, pts)) in areas.iter().zip(&self.panels) {
            let (xs, ys) = super::padded_bounds(pts);
            let mut chart = ChartBuilder::on(area)
                .caption(name, (FAMILY, 17))
                .margin(10)
                .x_label_area_size(28)
                .y_label_area_size(40)
                .build_cartesian_2d(xs, ys)
                .map_err(e)?;
            chart.configure_mesh().label_style((FAMILY, 12)).light_line_style(WHITE).draw().map_err(e)?;
            chart
                .draw_series(
                    pts.iter()
                        .zip(&self.labels)
                        .map(|(&p, &c)| Circle::new(p, 2, colors::CLASSES[c.max(0) as usize % colors::CLASSES.len()].mix(0.75).filled())),
                )
                .map_err(e)?;
        }
        Ok(())
    }
}
