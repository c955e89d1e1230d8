//! The `agent` command's work: segment the customers, write every cluster's campaign with
//! the rules or the configured LLM backend, and summarise what the backend did and cost.

use std::path::Path;

use anyhow::Result;

use crate::pipeline;
use crate::settings::Settings;
use rfm_campaigns::agent::{Campaign, Prompts, RunSummary};
use rfm_core::progress::Watch;
use rfm_core::run::SegmentRun;
use rfm_core::run_folder::{Campaigns, CampaignsFile};
use rfm_llm::Client;

/// Runs the pipeline (on a blocking thread, watched by `watch`) and the agent.
pub async fn run(
    settings: &Settings,
    prompts: &Prompts,
    fixtures: Option<&Path>,
    record: Option<&Path>,
    watch: &Watch,
) -> Result<(SegmentRun, CampaignsFile)> {
    // Set up the backend first: a missing key should not wait for the pipeline.
    let client = Client::from_settings(&settings.llm, fixtures, record)?;
    let s = settings.clone();
    let run = watch.blocking(move || pipeline::run_segment(&s)).await??;
    watch.announce("writing campaigns")?;
    let offers = &settings.agent.offers;
    let rules = rfm_campaigns::agent::rule_campaigns(&run, prompts, offers)?;
    let (mut campaigns, summary) = match &client {
        None => (
            rules,
            RunSummary {
                backend: "rules".into(),
                ..Default::default()
            },
        ),
        Some(client) => {
            let campaigns = rfm_campaigns::agent::llm_campaigns(
                &run,
                &rules,
                prompts,
                &settings.agent,
                client,
                settings.llm.temperature,
                settings.llm.max_tokens,
            )
            .await?;
            let summary = summarise(client, &campaigns, settings);
            (campaigns, summary)
        }
    };
    rfm_campaigns::agent::add_sender_and_footer(
        &mut campaigns,
        &settings.agent.sender,
        &settings.agent.footer,
    );
    Ok((run, CampaignsFile::new(Campaigns { summary, campaigns })))
}

fn summarise(client: &Client, campaigns: &[Campaign], settings: &Settings) -> RunSummary {
    let n = client.counts();
    let cost = n.input_tokens as f64 * settings.llm.input_cost_per_mtok / 1e6
        + n.output_tokens as f64 * settings.llm.output_cost_per_mtok / 1e6;
    RunSummary {
        backend: client.backend().into(),
        model: Some(client.model().into()),
        requests: n.requests,
        retries: n.retries,
        cache_hits: n.cache_hits,
        input_tokens: n.input_tokens,
        output_tokens: n.output_tokens,
        tokens: n.input_tokens + n.output_tokens,
        estimated_cost: (cost * 1e6).round() / 1e6,
        from_llm: campaigns
            .iter()
            .filter(|c| c.source == rfm_campaigns::agent::CopySource::Llm)
            .count(),
        fallbacks: campaigns
            .iter()
            .filter(|c| c.source == rfm_campaigns::agent::CopySource::Fallback)
            .count(),
    }
}
