//! Figures in Rhai: `plot_mixture`. Drawing is in `crate::plot`.

use super::mixture::{values_1d, ScriptMixture};
use super::options::Options;
use super::{Docs, RhaiResult};
use crate::plot::{self, mixture_fig::MixtureFigure};
use rhai::{Dynamic, Engine, Map};
use std::path::Path;

fn plot_mixture(x: &Dynamic, mix: &ScriptMixture, path: &str, opts: &Map) -> RhaiResult<String> {
    let op = "plot_mixture";
    let o = Options::new(op, opts, &["bins", "title", "xlabel", "width", "height"])?;
    let values = values_1d(op, x)?;
    let bins = o.get("bins").map(|_| o.count("bins", 0)).transpose()?;
    let mut fig = MixtureFigure::new(&values, &mix.0, bins).map_err(|e| crate::Error::arg(format!("{op}: {e}")))?;
    if let Some(t) = o.get("title").map(|_| o.string("title", "")).transpose()? {
        fig.title = t;
    }
    fig.x_label = o.string("xlabel", &fig.x_label)?;
    let size = (o.count("width", plot::DEFAULT_SIZE.0 as usize)? as u32, o.count("height", plot::DEFAULT_SIZE.1 as usize)? as u32);
    if size.0 < 200 || size.1 < 150 {
        return Err(crate::Error::arg(format!("{op}: a figure needs at least 200 x 150 pixels, got {} x {}", size.0, size.1)).into());
    }
    plot::save(&fig, Path::new(path), size)?;
    Ok(path.to_string())
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "plot";
    docs.add(a, "plot_mixture", "plot_mixture(x, mix, path) | plot_mixture(x, mix, path, #{ bins, title, xlabel, width, height })",
        "The paper's Fig. 3: the histogram of x as a density, the mixture density, and each weighted component labelled balanced / imbalanced with its weight and mean. PNG or SVG by the extension; written atomically; returns the path.",
        "plot_mixture(z, mix, \"runs/gap.png\")");
    engine.register_fn("plot_mixture", |x: Dynamic, mix: ScriptMixture, path: &str| plot_mixture(&x, &mix, path, &Map::new()));
    engine.register_fn("plot_mixture", |x: Dynamic, mix: ScriptMixture, path: &str, opts: Map| plot_mixture(&x, &mix, path, &opts));
}
