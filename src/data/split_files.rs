//! The split files of CREMA-D, AVE and Kinetics-Sounds as the public pipelines ship them
//! (data-formats.md), read as they are: UTF-8 BOMs, CRLF line ends, optional headers, blank
//! lines. Errors name the line.

use crate::error::{Error, Result};

/// One row of a split file: the clip's id (its file stem), its label, and for AVE the
/// [start, end] seconds to crop to.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The 1-based line of the split file it came from (for errors about the clip's files).
    pub line: usize,
    pub clip: String,
    pub label: usize,
    pub span: Option<(f64, f64)>,
}

/// CREMA-D's six emotions, in the order OGM-GE uses (NEU 0, HAP 1, SAD 2, FEA 3, DIS 4, ANG 5).
pub const CREMAD_OGM: [&str; 6] = ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"];
/// The same in sorted order, as D&R and MLA number them.
pub const CREMAD_SORTED: [&str; 6] = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"];

/// Which numbering of the CREMA-D classes; recorded with every run, since results differ per class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CremadLabels {
    Ogm,
    Sorted,
}

impl CremadLabels {
    pub fn names(self) -> &'static [&'static str; 6] {
        match self {
            CremadLabels::Ogm => &CREMAD_OGM,
            CremadLabels::Sorted => &CREMAD_SORTED,
        }
    }
}

/// The non-empty lines with their 1-based numbers, BOM and CR removed.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.trim_start_matches('\u{feff}')
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r').trim()))
        .filter(|(_, l)| !l.is_empty())
}

fn at(file: &str, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::arg(format!("{file}:{line}: {msg}"))
}

/// CREMA-D: `clip_id,EMO` rows (OGM-GE: no header) or a `name,label` header first (D&R).
pub fn cremad(file: &str, text: &str, labels: CremadLabels) -> Result<Vec<Entry>> {
    let names = labels.names();
    let mut out = Vec::new();
    for (n, line) in lines(text) {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() < 2 {
            return Err(at(file, n, format!("expected `clip_id,EMOTION`, found \"{line}\"")));
        }
        if out.is_empty() && cols[0].eq_ignore_ascii_case("name") {
            continue; // D&R's header
        }
        let label = names
            .iter()
            .position(|e| e.eq_ignore_ascii_case(cols[1]))
            .ok_or_else(|| at(file, n, format!("unknown emotion \"{}\"; CREMA-D's are {}", cols[1], names.join(", "))))?;
        out.push(Entry { line: n, clip: cols[0].to_string(), label, span: None });
    }
    Ok(out)
}

/// AVE: `Category&YouTubeID&Quality&Start&End` rows; classes numbered by the sorted category
/// names given (pass every split's categories so train and test agree).
pub fn ave(file: &str, text: &str, categories: &[String]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (n, line) in lines(text) {
        let cols: Vec<&str> = line.split('&').collect();
        if cols.len() != 5 {
            return Err(at(file, n, format!("expected `Category&YouTubeID&Quality&Start&End`, found \"{line}\"")));
        }
        let label = categories.iter().position(|c| c == cols[0]).ok_or_else(|| at(file, n, format!("unknown category \"{}\"", cols[0])))?;
        let num = |s: &str| s.trim().parse::<f64>().map_err(|_| at(file, n, format!("\"{s}\" is not a number of seconds")));
        let (start, end) = (num(cols[3])?, num(cols[4])?);
        if !(end > start && start >= 0.0) {
            return Err(at(file, n, format!("empty span [{start}, {end}]")));
        }
        out.push(Entry { line: n, clip: cols[1].to_string(), label, span: Some((start, end)) });
    }
    Ok(out)
}

/// The sorted distinct AVE categories of several split files.
pub fn ave_categories(texts: &[&str]) -> Vec<String> {
    let mut cats: Vec<String> =
        texts.iter().flat_map(|t| lines(t).filter_map(|(_, l)| l.split('&').next().map(str::to_string)).collect::<Vec<_>>()).collect();
    cats.sort();
    cats.dedup();
    cats
}

/// Kinetics-Sounds: `ytid[_start_end],10,label_idx`; the clip is column 0 (one public loader
/// reads the wrong column), the label column 2.
pub fn kinetics_sounds(file: &str, text: &str, classes: usize) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (n, line) in lines(text) {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() != 3 {
            return Err(at(file, n, format!("expected `clip,10,label_index`, found \"{line}\"")));
        }
        let label: usize = cols[2].parse().map_err(|_| at(file, n, format!("label \"{}\" is not an integer", cols[2])))?;
        if label >= classes {
            return Err(at(file, n, format!("label {label} is outside [0, {classes})")));
        }
        out.push(Entry { line: n, clip: cols[0].to_string(), label, span: None });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cremad_with_bom_crlf_and_both_layouts() {
        let ogm = "\u{feff}1088_IOM_NEU_XX,NEU\r\n1001_DFA_ANG_XX,ANG\r\n\r\n";
        let e = cremad("train.csv", ogm, CremadLabels::Ogm).unwrap();
        assert_eq!(
            e,
            vec![
                Entry { line: 1, clip: "1088_IOM_NEU_XX".into(), label: 0, span: None },
                Entry { line: 2, clip: "1001_DFA_ANG_XX".into(), label: 5, span: None },
            ]
        );
        let dr = "name,label\n1088_IOM_NEU_XX,NEU\n";
        assert_eq!(cremad("val.csv", dr, CremadLabels::Sorted).unwrap()[0].label, 4);
        let err = cremad("test.csv", "a,NEU\nb,BORED\n", CremadLabels::Ogm).unwrap_err().to_string();
        assert!(err.starts_with("test.csv:2:") && err.contains("BORED"), "{err}");
    }

    #[test]
    fn ave_rows_spans_and_categories() {
        let train = "Church bell&c---zaDCTaE&good&0&10\r\nAcoustic guitar&abc&good&2&8\r\n";
        let cats = ave_categories(&[train, "Bark&x&good&0&10\n"]);
        assert_eq!(cats, vec!["Acoustic guitar", "Bark", "Church bell"]);
        let e = ave("trainSet.txt", train, &cats).unwrap();
        assert_eq!(e[0], Entry { line: 1, clip: "c---zaDCTaE".into(), label: 2, span: Some((0.0, 10.0)) });
        assert_eq!(e[1].span, Some((2.0, 8.0)));
        assert!(ave("t.txt", "Bark&x&good&5&5\n", &cats).unwrap_err().to_string().contains("t.txt:1: empty span"));
        assert!(ave("t.txt", "Bark&x&good\n", &cats).is_err());
    }

    #[test]
    fn kinetics_sounds_takes_column_zero_and_checks_labels() {
        let e = kinetics_sounds("my_train.txt", "abc_000010_000020,10,3\r\nxyz,10,30\r\n", 31).unwrap();
        assert_eq!(e[0].clip, "abc_000010_000020");
        assert_eq!((e[0].label, e[1].label), (3, 30));
        let err = kinetics_sounds("my_test.txt", "a,10,1\nb,10,31\n", 31).unwrap_err().to_string();
        assert!(err.starts_with("my_test.txt:2:") && err.contains("outside [0, 31)"), "{err}");
    }
}
