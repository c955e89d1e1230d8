//! The catalogue of standard RFM segments and the rule that names clusters: each cluster's
//! median R, F and M are placed among all customers (percentiles), compared with each
//! segment's profile, and names are handed out best fit first so no two clusters share one.

use rfm_core::cluster::ClusterSummary;
use rfm_core::rfm::RfmTable;
use rfm_core::run::SegmentRun;

/// Below this mean P(alive) a high-value cluster is named At Risk or Can't Lose Them,
/// whatever its recency percentile says.
pub const LOW_P_ALIVE: f64 = 0.5;
/// A cluster is high-value when its frequency-and-monetary score is at least this.
pub const HIGH_VALUE: f64 = 0.6;
/// The segments a high-value cluster with a low P(alive) may be named.
const SLIPPING: [&str; 2] = ["at_risk", "cant_lose_them"];

/// A cluster's predictions as the rules use and quote them (aggregates only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    pub p_alive: f64,
    /// Expected purchases per customer over the horizon.
    pub purchases_each: f64,
    pub expected_revenue: f64,
    pub clv: f64,
    pub horizon_days: u32,
}

impl Outlook {
    /// Each cluster's outlook, when the models were fitted.
    pub fn of_run(run: &SegmentRun) -> Vec<Option<Outlook>> {
        let k = run.segmentation.clusters.len();
        let Some(r) = run.predictions.as_ref().and_then(|p| p.fitted()) else {
            return vec![None; k];
        };
        (0..k)
            .map(|c| {
                let s = r.segments.get(c).filter(|s| s.customers > 0)?;
                Some(Outlook {
                    p_alive: s.mean_p_alive,
                    purchases_each: s.expected_purchases / s.customers as f64,
                    expected_revenue: s.expected_revenue,
                    clv: s.clv,
                    horizon_days: r.model.horizon_days,
                })
            })
            .collect()
    }

    /// The figures copy may quote, by template variable, as they are written.
    pub fn figures(&self) -> [(&'static str, String); 5] {
        [
            ("p_alive_pct", format!("{:.0}", self.p_alive * 100.0)),
            ("purchases_each", format!("{:.1}", self.purchases_each)),
            ("expected_revenue", format!("{:.2}", self.expected_revenue)),
            ("clv", format!("{:.2}", self.clv)),
            ("horizon_days", self.horizon_days.to_string()),
        ]
    }

    fn slipping(&self, s: &Scores) -> bool {
        s.value() >= HIGH_VALUE && self.p_alive < LOW_P_ALIVE
    }
}

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
/// the rationale says so. With the models' `outlooks`, a high-value cluster with a low
/// P(alive) may only be At Risk or Can't Lose Them, and the rationale quotes the figures.
pub fn name_clusters(
    rfm: &RfmTable,
    clusters: &[ClusterSummary],
    outlooks: &[Option<Outlook>],
) -> Vec<(&'static Segment, String)> {
    let scored: Vec<Scores> = clusters.iter().map(|c| scores(rfm, c)).collect();
    let slipping = |ci: usize| {
        outlooks
            .get(ci)
            .copied()
            .flatten()
            .is_some_and(|o| o.slipping(&scored[ci]))
    };
    let allowed = |ci: usize, si: usize| !slipping(ci) || SLIPPING.contains(&CATALOGUE[si].key);
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (ci, s) in scored.iter().enumerate() {
        for (si, seg) in CATALOGUE.iter().enumerate() {
            if allowed(ci, si) {
                pairs.push((s.distance(seg), ci, si));
            }
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
                .filter(|&si| allowed(ci, si))
                .min_by(|&a, &b| s.distance(&CATALOGUE[a]).total_cmp(&s.distance(&CATALOGUE[b])))
                .expect("every cluster may take some segment");
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
            if let Some(o) = outlooks.get(ci).copied().flatten() {
                why.push_str(&outlook_sentence(&o, slipping(ci)));
            }
            (seg, why)
        })
        .collect()
}

/// The models' figures for a rationale: "62 % still active, 1.4 purchases expected per
/// customer in the next 90 days."
fn outlook_sentence(o: &Outlook, slipping: bool) -> String {
    let mut s = format!(
        " {} still active, {:.1} purchases expected per customer in the next {} days.",
        pct(o.p_alive),
        o.purchases_each,
        o.horizon_days
    );
    if slipping {
        s.push_str(" High value but a low chance of still being active: named as a segment to win back, whatever its recency says.");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_count_ties_half() {
        assert_eq!(below(&[1.0, 2.0, 2.0, 3.0], 2.0), 0.5);
        assert_eq!(below(&[1.0, 2.0, 3.0, 4.0], 5.0), 1.0);
    }

    /// A high-value cluster that still looks recent, but that the models give a low
    /// P(alive), is named a segment to win back; with a high P(alive) it is not.
    #[test]
    fn a_low_p_alive_overrides_recency_for_high_value() {
        use rfm_core::cluster::{Centroid, Stat};
        let stat = |m: f64| Stat { mean: m, median: m };
        let rfm = RfmTable {
            customer_ids: (0..4).map(|i| i.to_string()).collect(),
            recency: vec![5.0, 100.0, 200.0, 300.0],
            frequency: vec![20.0, 2.0, 1.0, 1.0],
            monetary: vec![5000.0, 100.0, 50.0, 20.0],
        };
        let cluster = ClusterSummary {
            id: 0,
            size: 1,
            share: 0.25,
            revenue: 5000.0,
            revenue_share: 0.9,
            recency: stat(5.0),
            frequency: stat(20.0),
            monetary: stat(5000.0),
            centroid: Centroid {
                recency: 5.0,
                frequency: 20.0,
                monetary: 5000.0,
            },
        };
        let outlook = |p_alive| Outlook {
            p_alive,
            purchases_each: 1.4,
            expected_revenue: 900.0,
            clv: 880.0,
            horizon_days: 90,
        };
        let clusters = [cluster];
        let (seg, why) = &name_clusters(&rfm, &clusters, &[Some(outlook(0.3))])[0];
        assert!(SLIPPING.contains(&seg.key), "{}", seg.key);
        assert!(
            why.contains(
                "30 % still active, 1.4 purchases expected per customer in the next 90 days"
            ),
            "{why}"
        );
        let (seg, why) = &name_clusters(&rfm, &clusters, &[Some(outlook(0.9))])[0];
        assert_eq!(seg.key, "champions");
        assert!(
            why.contains("90 % still active") && !why.contains("win back"),
            "{why}"
        );
        let (seg, _) = &name_clusters(&rfm, &clusters, &[None])[0];
        assert_eq!(seg.key, "champions");
    }

    #[test]
    fn catalogue_keys_are_unique() {
        let mut keys: Vec<_> = CATALOGUE.iter().map(|s| s.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), CATALOGUE.len());
    }
}
