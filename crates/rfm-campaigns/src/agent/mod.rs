//! The marketing agent: for every cluster a segment name with its reason, a strategy, the
//! channels and a draft email. The rule-based agent here is deterministic and offline; the
//! LLM agent ([`writer`]) uses it as its fall-back.

pub mod channels;
pub mod gate;
pub mod grounding;
pub mod prompts;

mod segments;
mod settings;
pub mod writer;

pub use prompts::{Prompts, PromptsError};
pub use segments::{CATALOGUE, Outlook, Scores, Segment, name_clusters};
pub use settings::{AgentSettings, AgentSettingsError};

pub use rfm_core::run_folder::{Campaign, CopySource, Email, RunSummary};

use rfm_core::run::SegmentRun;
use rfm_llm::ask::Problem;

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
    agent: &AgentSettings,
    client: &rfm_llm::Client,
    temperature: f32,
    max_tokens: u32,
) -> Result<Vec<Campaign>, rfm_llm::LlmError> {
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
    let bar = rfm_core::progress::Counter::new("writing campaigns", briefs.len() as u64);
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
            let reason = rfm_llm::ask::invalid("two segments got one name", &[taken]);
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
