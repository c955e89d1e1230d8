//! The marketing agent: for every cluster a segment name with its reason, a strategy, the
//! channels and a draft email. The rule-based agent here is deterministic and offline.

pub mod grounding;
mod prompts;
mod segments;

use serde::Serialize;

pub use prompts::{Prompts, PromptsError};
pub use segments::{CATALOGUE, Scores, Segment, name_clusters};

use crate::pipeline::SegmentRun;

/// A draft email; the sender address and unsubscribe footer are added when it is sent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Email {
    pub subject: String,
    pub preheader: String,
    pub body: String,
}

/// The campaign for one cluster.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Campaign {
    pub cluster: usize,
    pub name: String,
    pub rationale: String,
    pub strategy: String,
    pub channels: Vec<String>,
    pub email: Email,
    /// `rules`, `llm` or `fallback`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// What a run of the agent cost.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct RunSummary {
    pub backend: String,
    pub model: Option<String>,
    pub requests: u64,
    pub retries: u64,
    pub tokens: u64,
    pub estimated_cost: f64,
}

/// The `campaigns.json` document.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignsDocument {
    pub version: &'static str,
    pub summary: RunSummary,
    pub campaigns: Vec<Campaign>,
}

/// Names every cluster and renders its campaign from the templates; the emails must pass
/// the grounding checks (figures from the cluster, offers from `offers`).
pub fn rule_campaigns(
    run: &SegmentRun,
    prompts: &Prompts,
    offers: &[String],
) -> Result<Vec<Campaign>, PromptsError> {
    let named = name_clusters(&run.rfm, &run.segmentation.clusters);
    run.segmentation
        .clusters
        .iter()
        .zip(named)
        .map(|(cluster, (segment, rationale))| {
            let rendered = prompts.render(segment, cluster)?;
            let e = &rendered.email;
            let problems =
                grounding::check(&e.subject, &e.preheader, &e.body, &rendered.allowed, offers);
            if !problems.is_empty() {
                return Err(PromptsError::Ungrounded {
                    path: prompts.origin().to_string(),
                    segment: segment.key.to_string(),
                    problems: problems
                        .iter()
                        .map(|v| format!("{}: {}", v.field, v.problem))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            Ok(Campaign {
                cluster: cluster.id,
                name: segment.name.to_string(),
                rationale,
                strategy: rendered.strategy,
                channels: rendered.channels,
                email: rendered.email,
                source: "rules",
                fallback_reason: None,
            })
        })
        .collect()
}

/// Markdown for pasting into docs and tickets.
pub fn markdown(campaigns: &[Campaign]) -> String {
    let mut s = String::from("# Campaigns\n");
    for c in campaigns {
        s.push_str(&format!(
            "\n## Cluster {}: {}\n\n{}\n\n**Strategy.** {}\n\n**Channels.** {}\n\n**Subject:** {}  \n**Preheader:** {}\n\n{}\n",
            c.cluster,
            c.name,
            c.rationale,
            c.strategy,
            c.channels.join(", "),
            c.email.subject,
            c.email.preheader,
            c.email.body
                .lines()
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    s
}
