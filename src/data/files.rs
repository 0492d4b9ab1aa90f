//! Users' own data: a directory with one .safetensors file per split (`train`, `val`, `test`;
//! train required). Each file holds one tensor per modality (rows = samples), `labels` (ints),
//! and optionally `ids` (ints). Written from Python in one line:
//!
//! ```python
//! save_file({"audio": a, "video": v, "labels": y}, "mydata/train.safetensors")
//! ```

use super::dataset::{Dataset, Modality};
use crate::error::{Error, Result};
use crate::tensor::io::load_safetensors;
use crate::tensor::{check, dtype, Kind, Tensor};
use std::path::Path;

const SPLITS: [&str; 3] = ["train", "val", "test"];

pub fn load(dir: &Path, classes: Option<usize>) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            "no such directory; dataset(\"files\", #{ path }) wants a folder holding train.safetensors (and optionally val / test)",
        ));
    }
    let mut parts: Vec<(String, Vec<(String, Tensor)>)> = Vec::new();
    for split in SPLITS {
        let file = dir.join(format!("{split}.safetensors"));
        if file.exists() {
            parts.push((split.to_string(), load_safetensors(&file)?));
        } else if split == "train" {
            return Err(Error::io(&file, "missing: the train split is required"));
        }
    }
    let names_of = |tensors: &[(String, Tensor)]| -> Vec<String> {
        let mut v: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).filter(|n| n != "labels" && n != "ids").collect();
        v.sort();
        v
    };
    let modality_names = names_of(&parts[0].1);
    if modality_names.is_empty() {
        return Err(Error::io(dir.join("train.safetensors"), "holds no modality tensors (anything besides labels and ids)"));
    }
    let mut labels = Vec::new();
    let mut data: Vec<Vec<Tensor>> = modality_names.iter().map(|_| Vec::new()).collect();
    let mut splits = Vec::new();
    let mut offset = 0i64;
    for (split, tensors) in &parts {
        let file = dir.join(format!("{split}.safetensors"));
        let get = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        let y = get("labels").ok_or_else(|| Error::io(&file, "has no `labels` tensor"))?;
        if y.dim() != 1 || dtype::is_float(y.kind()) || y.kind() == Kind::Bool {
            return Err(Error::io(
                &file,
                format!("`labels` must be a 1-d int tensor, got {} of shape {:?}", dtype::kind_name(y.kind()), y.size()),
            ));
        }
        let rows = y.size()[0];
        if rows == 0 {
            return Err(Error::io(&file, "the split is empty (0 labels)"));
        }
        if names_of(tensors) != modality_names {
            return Err(Error::io(
                &file,
                format!("holds modalities {:?}, but train.safetensors holds {:?}", names_of(tensors), modality_names),
            ));
        }
        for (slot, name) in data.iter_mut().zip(&modality_names) {
            let t = get(name).expect("listed above");
            if t.dim() == 0 || t.size()[0] != rows {
                return Err(Error::io(
                    &file,
                    format!("modality `{name}` has {} rows but there are {rows} labels", t.size().first().copied().unwrap_or(0)),
                ));
            }
            slot.push(t.shallow_clone());
        }
        labels.push(check("files", y.f_to_kind(Kind::Int64))?);
        splits.push((split.clone(), (offset..offset + rows).collect::<Vec<i64>>()));
        offset += rows;
    }
    let labels = check("files", Tensor::f_cat(&labels, 0))?;
    let max_label = check("files", labels.f_max().and_then(|t| t.f_int64_value(&[])))?;
    // Labels are class indices: a label of 10^12 is a corrupt or unmapped file, not 10^12 classes.
    const MAX_CLASSES: i64 = 1_000_000;
    if max_label >= MAX_CLASSES && classes.is_none() {
        return Err(Error::arg(format!("{}: the largest label is {max_label}; labels must be class indices 0..C-1 (at most {MAX_CLASSES} classes): map them to indices first", dir.display())));
    }
    let classes = classes.unwrap_or(max_label as usize + 1);
    let modalities = modality_names
        .into_iter()
        .zip(data)
        .map(|(name, parts)| Ok(Modality::memory(name, check("files", Tensor::f_cat(&parts, 0))?)))
        .collect::<Result<Vec<_>>>()?;
    let ds = Dataset {
        name: format!("files:{}", dir.display()),
        modalities,
        labels,
        class_names: (0..classes).map(|c| format!("class{c}")).collect(),
        ids: None,
        splits,
        meta: Vec::new(),
        source: None,
    };
    ds.validate()?;
    Ok(ds)
}
