//! Clustering for diagnosis: k-means (k-means++ starts, Lloyd iterations, sklearn's settings)
//! and the purity of a clustering against labels (D&R's measure of how well a modality's
//! features separate the classes), with the min-max scaling D&R applies first.

pub mod kmeans;
pub mod purity;

pub use kmeans::{kmeans, KMeans, KMeansOptions};
pub use purity::{minmax_scale, purity};
