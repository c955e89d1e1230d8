//! The marketing agent: for every cluster a segment name with its reason, a strategy, the
//! channels and a draft email. The rule-based agent here is deterministic and offline; the
//! LLM agent ([`writer`]) uses it as its fall-back.

pub mod gate;
pub mod grounding;
pub mod prompts;
pub mod run;
mod segments;
pub mod writer;

use serde::{Deserialize, Serialize};

pub use prompts::{Prompts, PromptsError};
pub use segments::{CATALOGUE, Outlook, Scores, Segment, name_clusters};

use crate::llm::ask::{Fallback, Problem};
use crate::pipeline::SegmentRun;

/// A draft email. The sender and the unsubscribe footer come from the settings, added by
/// code ([`add_sender_and_footer`]), never written by the LLM.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Email {
    pub from: String,
    pub subject: String,
    pub preheader: String,
    pub body: String,
    pub footer: String,
}

/// Who wrote a piece of copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopySource {
    /// The deterministic rules (offline, or no LLM configured).
    Rules,
    /// The LLM, and it passed every check.
    Llm,
    /// The rules, because the LLM's answer failed its checks or the call failed.
    Fallback,
}

impl CopySource {
    pub fn as_str(self) -> &'static str {
        match self {
            CopySource::Rules => "rules",
            CopySource::Llm => "llm",
            CopySource::Fallback => "fallback",
        }
    }
}

impl std::fmt::Display for CopySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The campaign for one cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Campaign {
    pub cluster: usize,
    pub name: String,
    pub rationale: String,
    pub strategy: String,
    pub channels: Vec<String>,
    pub email: Email,
    pub source: CopySource,
    /// Why the rules wrote it, when the LLM was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// What a run of the agent did and cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RunSummary {
    pub backend: String,
    pub model: Option<String>,
    /// HTTP requests sent (retries included; cache hits not).
    pub requests: u64,
    pub retries: u64,
    pub cache_hits: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub tokens: u64,
    /// From llm.input_cost_per_mtok and llm.output_cost_per_mtok.
    pub estimated_cost: f64,
    /// Campaigns by source.
    pub from_llm: usize,
    pub fallbacks: usize,
}

/// Names every cluster and renders its campaign from the templates; the emails must pass
/// the grounding checks (figures from the cluster, offers from `offers`).
pub fn rule_campaigns(
    run: &SegmentRun,
    prompts: &Prompts,
    offers: &[String],
) -> Result<Vec<Campaign>, PromptsError> {
    let outlooks = Outlook::of_run(run);
    let named = name_clusters(&run.rfm, &run.segmentation.clusters, &outlooks);
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
                source: CopySource::Rules,
                fallback: None,
            })
        })
        .collect()
}

/// Adds the configured sender and footer to every email.
pub fn add_sender_and_footer(campaigns: &mut [Campaign], sender: &str, footer: &str) {
    for c in campaigns {
        c.email.from = sender.to_string();
        c.email.footer = footer.to_string();
    }
}

/// Campaigns written by the LLM behind `client`, each falling back to its rule campaign.
/// Only per-cluster aggregates go into the requests. `Err` only for errors that stop the run
/// (a replay miss, a recording that cannot be written).
pub async fn llm_campaigns(
    run: &SegmentRun,
    rules: &[Campaign],
    prompts: &Prompts,
    agent: &crate::settings::AgentSettings,
    client: &crate::llm::Client,
    temperature: f32,
    max_tokens: u32,
) -> Result<Vec<Campaign>, crate::llm::LlmError> {
    let outlooks = Outlook::of_run(run);
    let named = name_clusters(&run.rfm, &run.segmentation.clusters, &outlooks);
    let briefs: Vec<writer::Brief> = run
        .segmentation
        .clusters
        .iter()
        .zip(&named)
        .zip(rules)
        .zip(&outlooks)
        .map(|(((cluster, (segment, _)), rule), outlook)| writer::Brief {
            cluster,
            segment,
            rule,
            outlook: *outlook,
            taken: rules
                .iter()
                .filter(|r| r.cluster != cluster.id)
                .map(|r| r.name.clone())
                .collect(),
        })
        .collect();
    let mut done = Vec::with_capacity(briefs.len());
    let bar = crate::progress::Counter::new("writing campaigns", briefs.len() as u64);
    let all = futures::future::join_all(briefs.iter().map(|b| async {
        let r = writer::write(client, prompts, agent, temperature, max_tokens, b).await;
        bar.inc();
        r
    }))
    .await;
    bar.finish();
    for result in all {
        let mut c = result?;
        // Two LLM names may coincide; the later cluster keeps its rule campaign.
        if let Some(first) = done
            .iter()
            .find(|d: &&Campaign| d.name.eq_ignore_ascii_case(&c.name))
        {
            let taken = Problem::new(
                "name_taken",
                format!(
                    "the name `{}` is already used by cluster {}",
                    c.name, first.cluster
                ),
            );
            let reason = Fallback::invalid("two segments got one name", &[taken]);
            let rule = rules
                .iter()
                .find(|r| r.cluster == c.cluster)
                .expect("one rule campaign per cluster");
            c = writer::fallback(rule, reason);
        }
        done.push(c);
    }
    Ok(done)
}

/// Markdown for pasting into docs and tickets.
pub fn markdown(campaigns: &[Campaign]) -> String {
    let mut s = String::from("# Campaigns\n");
    for c in campaigns {
        s.push_str(&format!(
            "\n## Cluster {}: {}\n\n{}\n\n**Strategy.** {}\n\n**Channels.** {}\n\n**Written by:** {}\n\n**From:** {}  \n**Subject:** {}  \n**Preheader:** {}\n\n{}\n",
            c.cluster,
            c.name,
            c.rationale,
            c.strategy,
            c.channels.join(", "),
            match &c.fallback {
                Some(r) => format!("rules (fall-back: {r})"),
                None => c.source.to_string(),
            },
            c.email.from,
            c.email.subject,
            c.email.preheader,
            c.email.body
                .lines()
                .map(str::to_string)
                .chain([String::new(), c.email.footer.clone()])
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    s
}
