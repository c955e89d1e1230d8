//! The catalogue of standard RFM segments and the rule that names clusters: each cluster's
//! median R, F and M are placed among all customers (percentiles), compared with each
//! segment's profile, and names are handed out best fit first so no two clusters share one.

use crate::cluster::ClusterSummary;
use crate::rfm::RfmTable;

/// A segment of the catalogue, with its profile: where its customers sit among all
/// customers for recency (1 = most recent) and for frequency and monetary combined
/// (1 = highest).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub key: &'static str,
    pub name: &'static str,
    pub recency: f64,
    pub value: f64,
    pub meaning: &'static str,
}

pub const CATALOGUE: [Segment; 11] = [
    Segment {
        key: "champions",
        name: "Champions",
        recency: 0.9,
        value: 0.9,
        meaning: "customers who bought recently, buy often and spend the most",
    },
    Segment {
        key: "loyal_customers",
        name: "Loyal Customers",
        recency: 0.65,
        value: 0.8,
        meaning: "customers who buy often and spend well",
    },
    Segment {
        key: "potential_loyalists",
        name: "Potential Loyalists",
        recency: 0.85,
        value: 0.5,
        meaning: "recent customers with average frequency and spend",
    },
    Segment {
        key: "new_customers",
        name: "New Customers",
        recency: 0.95,
        value: 0.1,
        meaning: "customers who bought very recently, but only once or twice",
    },
    Segment {
        key: "promising",
        name: "Promising",
        recency: 0.8,
        value: 0.25,
        meaning: "recent shoppers who have not spent much yet",
    },
    Segment {
        key: "need_attention",
        name: "Need Attention",
        recency: 0.5,
        value: 0.5,
        meaning: "customers with average recency, frequency and spend",
    },
    Segment {
        key: "about_to_sleep",
        name: "About to Sleep",
        recency: 0.45,
        value: 0.25,
        meaning: "customers with below-average recency and spend",
    },
    Segment {
        key: "at_risk",
        name: "At Risk",
        recency: 0.25,
        value: 0.65,
        meaning: "customers who spent well and often, but not for some time",
    },
    Segment {
        key: "cant_lose_them",
        name: "Can't Lose Them",
        recency: 0.1,
        value: 0.9,
        meaning: "former best customers who have not come back for a long time",
    },
    Segment {
        key: "hibernating",
        name: "Hibernating",
        recency: 0.25,
        value: 0.25,
        meaning: "customers who last bought long ago, rarely and for little",
    },
    Segment {
        key: "lost",
        name: "Lost",
        recency: 0.05,
        value: 0.1,
        meaning: "customers with the lowest recency, frequency and spend",
    },
];

/// Where a cluster's medians sit among all customers, each in 0..=1 (1 = best).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Share of customers whose last purchase is older (ties count half).
    pub recency: f64,
    /// Share of customers who buy less often (ties count half).
    pub frequency: f64,
    /// Share of customers who spend less (ties count half).
    pub monetary: f64,
}

impl Scores {
    pub fn value(&self) -> f64 {
        (self.frequency + self.monetary) / 2.0
    }

    fn distance(&self, s: &Segment) -> f64 {
        ((self.recency - s.recency).powi(2) + (self.value() - s.value).powi(2)).sqrt()
    }
}

/// Mid-rank percentile of `v` in `all`: share below plus half the share equal.
fn below(all: &[f64], v: f64) -> f64 {
    let less = all.iter().filter(|&&x| x < v).count() as f64;
    let equal = all.iter().filter(|&&x| x == v).count() as f64;
    (less + equal / 2.0) / all.len().max(1) as f64
}

pub fn scores(rfm: &RfmTable, c: &ClusterSummary) -> Scores {
    Scores {
        recency: 1.0 - below(&rfm.recency, c.recency.median),
        frequency: below(&rfm.frequency, c.frequency.median),
        monetary: below(&rfm.monetary, c.monetary.median),
    }
}

fn pct(v: f64) -> String {
    format!("{:.0} %", v * 100.0)
}

/// A segment and a rationale for every cluster, in cluster order. Pairs are taken closest
/// first; a cluster whose best fit went to a closer cluster gets its next-best segment and
/// the rationale says so.
pub fn name_clusters(
    rfm: &RfmTable,
    clusters: &[ClusterSummary],
) -> Vec<(&'static Segment, String)> {
    let scored: Vec<Scores> = clusters.iter().map(|c| scores(rfm, c)).collect();
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (ci, s) in scored.iter().enumerate() {
        for (si, seg) in CATALOGUE.iter().enumerate() {
            pairs.push((s.distance(seg), ci, si));
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut chosen: Vec<Option<usize>> = vec![None; clusters.len()];
    let mut taken = vec![false; CATALOGUE.len()];
    for &(_, ci, si) in &pairs {
        if chosen[ci].is_none() && !taken[si] {
            chosen[ci] = Some(si);
            taken[si] = true;
        }
    }
    // With more clusters than segments, the rest share the closest fit, numbered.
    clusters
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            let s = &scored[ci];
            let best = (0..CATALOGUE.len())
                .min_by(|&a, &b| s.distance(&CATALOGUE[a]).total_cmp(&s.distance(&CATALOGUE[b])))
                .expect("catalogue is not empty");
            let si = chosen[ci].unwrap_or(best);
            let seg = &CATALOGUE[si];
            let mut why = format!(
                "Median recency {:.0} d (more recent than {} of customers), frequency {:.0} (above {}), monetary {:.2} (above {}): {}, {}.",
                c.recency.median,
                pct(s.recency),
                c.frequency.median,
                pct(s.frequency),
                c.monetary.median,
                pct(s.monetary),
                seg.name,
                seg.meaning
            );
            if si != best {
                let holder = chosen.iter().position(|&x| x == Some(best));
                match holder {
                    Some(h) => why.push_str(&format!(
                        " Closest fit was {}, which fits cluster {} better; {} is the next best.",
                        CATALOGUE[best].name, clusters[h].id, seg.name
                    )),
                    None => why.push_str(&format!(" Closest fit was {}.", CATALOGUE[best].name)),
                }
            }
            (seg, why)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_count_ties_half() {
        assert_eq!(below(&[1.0, 2.0, 2.0, 3.0], 2.0), 0.5);
        assert_eq!(below(&[1.0, 2.0, 3.0, 4.0], 5.0), 1.0);
    }

    #[test]
    fn catalogue_keys_are_unique() {
        let mut keys: Vec<_> = CATALOGUE.iter().map(|s| s.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), CATALOGUE.len());
    }
}
