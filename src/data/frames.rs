//! Which video frames a sample uses. Frames on disk (1 fps jpgs) are ordered by the number in
//! their names, never by directory listing order (whose order differs across file systems: a
//! public loader's defect), and "random" frames really are random, from a seed.

use crate::error::{Error, Result};
use crate::rng::Rng;
use std::path::{Path, PathBuf};

/// How T frames are chosen from the n a clip has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameChoice {
    /// The first T frames (OGM-GE, MMCosine, AGM with T = 1).
    First,
    /// The middle frame of each of T equal segments (test time; "evenly" in the KS pipelines).
    Evenly,
    /// A random frame within each of T equal segments (train time in D&R, BalanceBenchmark).
    RandomPerSegment,
}

impl FrameChoice {
    pub fn parse(name: &str) -> Result<FrameChoice> {
        match name {
            "first" => Ok(FrameChoice::First),
            "evenly" | "middle" => Ok(FrameChoice::Evenly),
            "random" => Ok(FrameChoice::RandomPerSegment),
            other => Err(Error::arg(format!("unknown frame choice \"{other}\": use \"first\", \"evenly\" or \"random\""))),
        }
    }
}

/// T frame positions out of n. With fewer than T frames, positions repeat (cycling), so every
/// sample has T frames. `rng` is used only by `RandomPerSegment`.
pub fn choose(n: usize, t: usize, choice: FrameChoice, rng: &mut Rng) -> Result<Vec<usize>> {
    if n == 0 {
        return Err(Error::arg("the clip has no frames"));
    }
    Ok((0..t)
        .map(|i| match choice {
            FrameChoice::First => i % n,
            FrameChoice::Evenly | FrameChoice::RandomPerSegment if n < t => i * n / t,
            FrameChoice::Evenly => {
                let (lo, hi) = (i * n / t, (i + 1) * n / t);
                (lo + hi - 1) / 2
            }
            FrameChoice::RandomPerSegment => {
                let (lo, hi) = (i * n / t, (i + 1) * n / t);
                lo + rng.below(hi - lo)
            }
        })
        .collect())
}

/// The number in a frame's file name: `00012.jpg` and `frame_00012.jpg` both give 12.
fn frame_number(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    let digits: String = stem.chars().rev().take_while(|c| c.is_ascii_digit()).collect::<Vec<_>>().into_iter().rev().collect();
    digits.parse().ok()
}

/// A clip's frame files (.jpg / .jpeg / .png), sorted by frame number.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, format!("{e} (no frames for this clip: run `gapscope prep`, or check the frames folder)")))?;
    let mut frames: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(), Some("jpg" | "jpeg" | "png")))
        .filter_map(|p| frame_number(&p).map(|n| (n, p)))
        .collect();
    frames.sort();
    if frames.is_empty() {
        return Err(Error::io(dir, "holds no numbered frame images (expected NNNNN.jpg or frame_NNNNN.jpg)"));
    }
    Ok(frames.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices() {
        let mut rng = Rng::new(1);
        assert_eq!(choose(10, 3, FrameChoice::First, &mut rng).unwrap(), vec![0, 1, 2]);
        assert_eq!(choose(10, 2, FrameChoice::Evenly, &mut rng).unwrap(), vec![2, 7]);
        assert_eq!(choose(3, 3, FrameChoice::Evenly, &mut rng).unwrap(), vec![0, 1, 2]);
        assert_eq!(choose(2, 4, FrameChoice::Evenly, &mut rng).unwrap(), vec![0, 0, 1, 1]);
        assert_eq!(choose(1, 3, FrameChoice::First, &mut rng).unwrap(), vec![0, 0, 0]);
        assert!(choose(0, 1, FrameChoice::First, &mut rng).is_err());
        // Random frames: one per segment, reproducible per seed, and not always the same.
        let draws: Vec<Vec<usize>> = (0..50).map(|s| choose(10, 2, FrameChoice::RandomPerSegment, &mut Rng::new(s)).unwrap()).collect();
        assert!(draws.iter().all(|d| d[0] < 5 && (5..10).contains(&d[1])));
        assert!(draws.iter().any(|d| d[0] != draws[0][0]));
        assert_eq!(draws[7], choose(10, 2, FrameChoice::RandomPerSegment, &mut Rng::new(7)).unwrap());
    }

    #[test]
    fn frames_sort_by_number_in_either_naming() {
        let dir = std::env::temp_dir().join(format!("gapscope-frames-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["00010.jpg", "00002.jpg", "frame_00001.jpg", "notes.txt"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let names: Vec<String> = list(&dir).unwrap().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec!["frame_00001.jpg", "00002.jpg", "00010.jpg"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(list(&dir).unwrap_err().to_string().contains("no frames for this clip"));
    }
}
