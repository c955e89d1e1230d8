//! Segment migration between two runs: their clusters are matched by centroid (so cluster
//! ids are stable across runs), and every customer present in both is counted from its
//! segment before to its segment after.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use rfm_core::rfm::Frequency;
use rfm_core::run_folder::{ClustersFile, Document, Migration, RunFolder};

/// One side of a comparison: cluster centroids, names, and each customer's cluster.
pub struct Side {
    pub path: String,
    pub centroids: Vec<[f64; 3]>,
    pub names: Vec<String>,
    pub customers: HashMap<String, usize>,
    /// How frequency was counted (centroids are only comparable with the same definition).
    pub frequency: Frequency,
}

impl Side {
    /// Reads a run folder's clusters.json (checked by [`RunFolder::open`]) and customers.csv.
    pub fn read(dir: &Path) -> Result<Side> {
        let folder = RunFolder::open(dir)?;
        let doc = &folder.clusters;
        let k = doc.clusters.len();
        let mut centroids = vec![[0.0; 3]; k];
        for c in &doc.clusters {
            if c.id >= k {
                bail!(
                    "{}: cluster id {} out of range",
                    dir.join(ClustersFile::FILE).display(),
                    c.id
                );
            }
            centroids[c.id] = [
                c.centroid.recency,
                c.centroid.frequency,
                c.centroid.monetary,
            ];
        }
        let (names, customers) = read_customers(&dir.join("customers.csv"), k)?;
        Ok(Side {
            path: dir.display().to_string(),
            centroids,
            names,
            customers,
            frequency: doc.params.frequency,
        })
    }
}

/// Segment names by cluster and each customer's cluster, from customers.csv.
fn read_customers(path: &Path, k: usize) -> Result<(Vec<String>, HashMap<String, usize>)> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no `{name}` column", path.display()))
    };
    let (id_col, cluster_col, segment_col) =
        (col("customer_id")?, col("cluster")?, col("segment")?);
    let mut names = vec![String::new(); k];
    let mut customers = HashMap::new();
    for (n, rec) in reader.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", path.display(), n + 2))?;
        let cluster: usize = rec[cluster_col]
            .parse()
            .ok()
            .filter(|c| *c < k)
            .with_context(|| {
                format!(
                    "{}: row {}: bad cluster `{}`",
                    path.display(),
                    n + 2,
                    &rec[cluster_col]
                )
            })?;
        if names[cluster].is_empty() {
            names[cluster] = rec[segment_col].to_string();
        }
        customers.insert(rec[id_col].to_string(), cluster);
    }
    for (c, n) in names.iter_mut().enumerate() {
        if n.is_empty() {
            *n = format!("Cluster {c}");
        }
    }
    Ok((names, customers))
}

/// Distance between centroids in log1p space (the space the clusters were built in).
fn distance(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.max(0.0).ln_1p() - y.max(0.0).ln_1p()).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Matches clusters pairwise, closest centroids first.
pub fn match_clusters(before: &[[f64; 3]], after: &[[f64; 3]]) -> Vec<Option<usize>> {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, a) in before.iter().enumerate() {
        for (j, b) in after.iter().enumerate() {
            pairs.push((distance(a, b), i, j));
        }
    }
    pairs.sort_by(|x, y| x.0.total_cmp(&y.0).then((x.1, x.2).cmp(&(y.1, y.2))));
    let mut out = vec![None; before.len()];
    let mut taken = vec![false; after.len()];
    for (_, i, j) in pairs {
        if out[i].is_none() && !taken[j] {
            out[i] = Some(j);
            taken[j] = true;
        }
    }
    out
}

pub fn compare(before: &Side, after: &Side) -> Migration {
    if before.frequency != after.frequency {
        tracing::warn!(
            "{} counts frequency as {} but {} as {}: centroids are matched across different scales",
            before.path,
            before.frequency.as_str(),
            after.path,
            after.frequency.as_str()
        );
    }
    let matched = match_clusters(&before.centroids, &after.centroids);
    // After-clusters in the order of their before-matches, then the unmatched ones.
    let mut order: Vec<usize> = matched.iter().flatten().copied().collect();
    let unmatched: Vec<usize> = (0..after.centroids.len())
        .filter(|j| !order.contains(j))
        .collect();
    order.extend(unmatched);
    let position: HashMap<usize, usize> = order.iter().enumerate().map(|(p, &j)| (j, p)).collect();
    let mut matrix = vec![vec![0; order.len()]; before.centroids.len()];
    let mut both = 0;
    for (id, &i) in &before.customers {
        if let Some(&j) = after.customers.get(id) {
            matrix[i][position[&j]] += 1;
            both += 1;
        }
    }
    Migration {
        before: before.path.clone(),
        after: after.path.clone(),
        before_segments: before.names.clone(),
        after_segments: order
            .iter()
            .map(|&j| format!("{j}: {}", after.names[j]))
            .collect(),
        matched,
        matrix,
        customers_in_both: both,
        only_before: before.customers.len() - both,
        only_after: after.customers.len() - both,
    }
}

/// The matrix as a table for the terminal.
pub fn table(m: &Migration) -> String {
    let mut s = format!(
        "Migration from {} (rows) to {} (columns)\n{} customers in both; {} only before, {} only after\n\n",
        m.before, m.after, m.customers_in_both, m.only_before, m.only_after
    );
    let width = 12;
    s.push_str(&format!("{:<26}", "before \\ after"));
    for j in 0..m.after_segments.len() {
        s.push_str(&format!("{:>width$}", format!("[{j}]")));
    }
    s.push('\n');
    for (i, row) in m.matrix.iter().enumerate() {
        let name: String = format!("{i}: {}", m.before_segments[i])
            .chars()
            .take(25)
            .collect();
        s.push_str(&format!("{name:<26}"));
        for v in row {
            s.push_str(&format!("{v:>width$}"));
        }
        s.push('\n');
    }
    s.push_str("\nColumns:\n");
    for (j, name) in m.after_segments.iter().enumerate() {
        s.push_str(&format!("  [{j}] {name}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_match_their_nearest_counterparts() {
        let before = [
            [10.0, 50.0, 5000.0],
            [200.0, 2.0, 100.0],
            [60.0, 10.0, 800.0],
        ];
        let after = [
            [190.0, 2.0, 120.0],
            [55.0, 11.0, 700.0],
            [12.0, 45.0, 5200.0],
        ];
        assert_eq!(
            match_clusters(&before, &after),
            vec![Some(2), Some(0), Some(1)]
        );
        assert_eq!(
            match_clusters(&before, &after[..2]),
            vec![None, Some(0), Some(1)]
        );
    }
}
