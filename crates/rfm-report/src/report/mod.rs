//! What a run writes for people to look at: charts, `report.html` (self-contained),
//! `report.md`, and exports for email tools (`segments/<name>.csv`, customers with their
//! segment). Segment names come from the agent when it ran, else "Cluster N".

pub mod charts;
mod exports;
mod html;
mod markdown;

use anyhow::Result;
use serde::Serialize;

pub use exports::exports;

use rfm_campaigns::agent::Campaign;
use rfm_core::cluster::elbow::ElbowResult;
use rfm_core::run::SegmentRun;
use rfm_core::run_folder::{CampaignsFile, Document};

/// Everything a report shows.
pub struct ReportInput<'a> {
    pub run: &'a SegmentRun,
    pub campaigns: Option<&'a CampaignsFile>,
    pub elbow: Option<&'a ElbowResult>,
    pub currency: &'a str,
}

impl ReportInput<'_> {
    /// Segment name per cluster id.
    pub fn names(&self) -> Vec<String> {
        let k = self.run.segmentation.clusters.len();
        (0..k)
            .map(|c| {
                self.campaign(c)
                    .map(|x| x.name.clone())
                    .unwrap_or_else(|| format!("Cluster {c}"))
            })
            .collect()
    }

    pub fn campaign(&self, cluster: usize) -> Option<&Campaign> {
        self.campaigns
            .and_then(|d| d.campaigns.iter().find(|c| c.cluster == cluster))
    }
}

/// One segment's key figures.
#[derive(Debug, Clone, Serialize)]
pub struct Kpis {
    pub cluster: usize,
    pub name: String,
    pub customers: usize,
    pub customer_share: f64,
    pub revenue: f64,
    pub revenue_share: f64,
    /// Revenue per purchase (per invoice, or per line with `--frequency lines`).
    pub average_order_value: f64,
    pub recency_median: f64,
    pub frequency_median: f64,
    pub monetary_median: f64,
}

pub fn kpis(input: &ReportInput) -> Vec<Kpis> {
    let names = input.names();
    let run = input.run;
    let mut purchases = vec![0.0; names.len()];
    for (f, &l) in run.rfm.frequency.iter().zip(&run.segmentation.labels) {
        purchases[l] += f;
    }
    run.segmentation
        .clusters
        .iter()
        .map(|c| Kpis {
            cluster: c.id,
            name: names[c.id].clone(),
            customers: c.size,
            customer_share: c.share,
            revenue: c.revenue,
            revenue_share: c.revenue_share,
            average_order_value: if purchases[c.id] > 0.0 {
                c.revenue / purchases[c.id]
            } else {
                0.0
            },
            recency_median: c.recency.median,
            frequency_median: c.frequency.median,
            monetary_median: c.monetary.median,
        })
        .collect()
}

/// Writes everything for `--out DIR`: clusters.json, customers.csv, campaigns.json (when
/// the agent ran), the charts, report.html, report.md and segments/*.csv, all or nothing.
pub fn write_run(
    run: &SegmentRun,
    campaigns: Option<&CampaignsFile>,
    currency: &str,
    dir: &std::path::Path,
) -> Result<()> {
    let input = ReportInput {
        run,
        campaigns,
        elbow: run.elbow.as_ref(),
        currency,
    };
    let names = input.names();
    let mut out = Vec::new();
    if let Some(doc) = campaigns {
        out.push((CampaignsFile::FILE.into(), doc.to_json().into_bytes()));
    }
    out.extend(files(&input)?);
    crate::output::write_dir(run, dir, &out, &exports(run, &names))
}

/// The sweep as a table for the terminal.
pub fn elbow_table(e: &ElbowResult) -> String {
    let mut s = format!("{:>4}  {:>14}  {:>10}\n", "k", "WCSS", "silhouette");
    for p in &e.points {
        let mark = if p.k == e.recommended {
            "  <- recommended"
        } else {
            ""
        };
        s.push_str(&format!(
            "{:>4}  {:>14.2}  {:>10.3}{mark}\n",
            p.k, p.wcss, p.silhouette
        ));
    }
    s.push_str(&format!(
        "\nrecommended k = {}\nrule: {}\nsilhouette on {} customers{}\n",
        e.recommended,
        e.rule,
        e.silhouette_sample,
        if e.silhouette_sample == rfm_core::cluster::elbow::SILHOUETTE_SAMPLE {
            " (a seeded sample)"
        } else {
            ""
        }
    ));
    if e.fit_sample == rfm_core::cluster::elbow::SWEEP_SAMPLE {
        s.push_str(&format!(
            "each k fitted on {} customers (a seeded sample; WCSS scaled to all customers)\n",
            e.fit_sample
        ));
    }
    s
}

/// Every report file but the per-customer exports ([`exports`]), as (relative path, bytes).
pub fn files(input: &ReportInput) -> Result<Vec<(String, Vec<u8>)>> {
    let names = input.names();
    let charts = charts::all(&charts::ChartData {
        run: input.run,
        names: &names,
        currency: input.currency,
        elbow: input.elbow,
    })?;
    let mut out = Vec::new();
    out.push((
        "report.html".into(),
        html::render(input, &charts)?.into_bytes(),
    ));
    out.push((
        "report.md".into(),
        markdown::render(input, &charts).into_bytes(),
    ));
    for c in charts {
        out.push((format!("{}.png", c.name), c.png));
        out.push((format!("{}.svg", c.name), c.svg.into_bytes()));
    }
    Ok(out)
}
