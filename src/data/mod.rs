//! Datasets: in-memory multimodal tensors with labels, named splits, seeded batching that
//! yields sample indices, and subsets. Loaders fill a `Dataset`:
//!
//! - `dataset`: the `Dataset` and `Split` types
//! - `batches`: seeded shuffled batching
//! - `stratify`: seeded stratified train/val/test splits
//! - `synthetic`: the audio-visual generator with a degraded weak modality
//! - `files`: users' own data, one .safetensors file per split
//! - `mfeat`: UCI Multiple Features (six views of 2,000 digits)
//! - `audio`: WAV reading and the spectrogram front-ends A, B, C
//! - `split_files`: CREMA-D, AVE and Kinetics-Sounds split files, quirks included
//! - `frames`: frame files in numeric order and the choice of T frames per clip
//! - `vision`: image decoding and the train / test visual transforms
//! - `view`: a resampled view of a split (repeated rows, each keeping some modalities)
//! - `corpus`: CREMA-D, AVE and Kinetics-Sounds read lazily from their on-disk layouts

pub mod audio;
pub mod batches;
pub mod corpus;
pub mod dataset;
pub mod files;
pub mod frames;
pub mod mfeat;
pub mod split_files;
pub mod stratify;
pub mod synthetic;
pub mod view;
pub mod vision;

pub use batches::{Batch, BatchOptions, Batches};
pub use dataset::{Dataset, Modality, SampleSource, Split};
