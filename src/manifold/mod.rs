//! Embeddings of features for figures (the paper's Fig. 4): t-SNE as scikit-learn runs it, its
//! Barnes-Hut quadtree, and trustworthiness, the measure that checks an embedding against
//! its input without depending on the random layout.

pub mod quadtree;
pub mod trustworthiness;
pub mod tsne;

pub use trustworthiness::trustworthiness;
pub use tsne::{tsne, Tsne, TsneMethod, TsneOptions};
