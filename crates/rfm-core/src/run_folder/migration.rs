//! `migration.json`: how customers moved between the clusters of two runs.

use serde::{Deserialize, Serialize};

/// The comparison.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Migration {
    pub before: String,
    pub after: String,
    pub before_segments: Vec<String>,
    pub after_segments: Vec<String>,
    /// `after_for_before[i]`: the after-cluster matched to before-cluster i, if any.
    pub matched: Vec<Option<usize>>,
    /// `matrix[i][j]`: customers in before-cluster i and after-cluster j.
    pub matrix: Vec<Vec<usize>>,
    pub customers_in_both: usize,
    pub only_before: usize,
    pub only_after: usize,
}
