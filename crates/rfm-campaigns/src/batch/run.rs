//! Runs a batch: reads the agent's run folder, skips items a previous run finished, writes
//! the rest with bounded concurrency (rules offline, or the configured LLM), appends each
//! finished item to the JSONL file, and stops cleanly on Ctrl-C or at the token budget.

use crate::agent::CopySource;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::copy::{Copy, Judge, Templates, write};
use super::jsonl::{Writer, resume};
use super::{Channel, Item, items};
use crate::agent::AgentSettings;
use rfm_core::cluster::ClusterSummary;
use rfm_core::run_folder::RunFolder;
use rfm_llm::Client;
use rfm_llm::ask::Fallback;
use rfm_llm::settings::LlmSettings;

/// What the batch command was asked for.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub run_dir: PathBuf,
    pub segments: Option<Vec<String>>,
    pub channels: Vec<Channel>,
    pub locales: Vec<String>,
    pub tones: Vec<String>,
    pub variants: u32,
    pub out: PathBuf,
    pub concurrency: usize,
    pub rps: Option<f64>,
    pub max_tokens_total: Option<u64>,
    pub dry_run: bool,
    pub prompts: Option<PathBuf>,
}

/// One line of the output file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub segment: String,
    pub cluster: usize,
    pub channel: Channel,
    pub locale: String,
    pub tone: String,
    pub variant: u32,
    pub copy: Copy,
    pub source: CopySource,
    /// Why the offline copy was used, when the LLM was asked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fallback: Option<Fallback>,
    /// The names of the problems of every answer refused for this item.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub violations: Vec<String>,
    pub tokens: u64,
}

/// The end of a batch.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub items: usize,
    pub already_done: usize,
    pub written: usize,
    pub remaining: usize,
    pub by_source: BTreeMap<String, usize>,
    /// Fall-backs by reason (`invalid`, `token_limit`, …).
    pub fallback_reasons: BTreeMap<String, usize>,
    /// Refused answers' problems by name, regenerated ones included.
    pub violations: BTreeMap<String, usize>,
    pub fallbacks: Vec<(String, String)>,
    pub backend: String,
    pub requests: u64,
    pub retries: u64,
    pub cache_hits: u64,
    pub tokens: u64,
    pub estimated_cost: f64,
    /// Why the run stopped before the end, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

/// Why a batch stopped before its end. Written as its message in the summary JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum Stopped {
    /// `--dry-run`: nothing was called or written.
    DryRun,
    /// Ctrl-C or SIGTERM; finished items are in the file and a rerun resumes.
    Interrupted,
    /// `--max-tokens-total` was reached.
    TokenBudget(u64),
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::DryRun => f.write_str("dry run: nothing was called or written"),
            Stopped::Interrupted => f.write_str("interrupted"),
            Stopped::TokenBudget(n) => {
                write!(f, "token budget reached (--max-tokens-total {n})")
            }
        }
    }
}

impl From<Stopped> for String {
    fn from(s: Stopped) -> String {
        s.to_string()
    }
}

/// Segment names by cluster id.
type Names = Vec<(usize, String)>;

/// The clusters, their names and how frequency was counted, from an `agent --out` folder.
fn read_run(dir: &Path) -> Result<(Vec<ClusterSummary>, Names, rfm_core::rfm::Frequency)> {
    let folder = RunFolder::open(dir)?;
    let names = folder
        .campaigns("batch")?
        .campaigns
        .iter()
        .map(|c| (c.cluster, c.name.clone()))
        .collect();
    let clusters = folder.clusters.body;
    Ok((clusters.clusters, names, clusters.params.frequency))
}

/// The settings a batch reads.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings<'a> {
    /// The currency symbol in the copy.
    pub currency: &'a str,
    pub llm: &'a LlmSettings,
    pub agent: &'a AgentSettings,
}

/// Runs the batch (or, with `dry_run`, only counts and estimates) and returns the summary.
pub async fn run(
    settings: &BatchSettings<'_>,
    opts: &BatchOptions,
    client: Option<Client>,
    stop: Arc<AtomicBool>,
) -> Result<Summary> {
    let (clusters, names, frequency) = read_run(&opts.run_dir)?;
    let selected = select_segments(names, opts)?;
    let unit = match frequency {
        rfm_core::rfm::Frequency::Lines => "order lines",
        rfm_core::rfm::Frequency::Invoices => "orders",
    };
    let templates = Templates::load(opts.prompts.as_deref(), settings.currency, unit)?;
    for l in &opts.locales {
        if !templates.locales().contains(l) && client.is_none() {
            bail!(
                "--locales: no offline templates for `{l}`; available: {}",
                templates.locales().join(", ")
            );
        }
    }
    let all = items(
        &selected,
        &opts.channels,
        &opts.locales,
        &opts.tones,
        opts.variants,
    );
    let prior = if opts.dry_run {
        Default::default()
    } else {
        resume(&opts.out)?
    };
    let todo: Vec<Item> = all
        .iter()
        .filter(|i| !prior.done.contains(&i.key))
        .cloned()
        .collect();
    let mut summary = Summary {
        items: all.len(),
        already_done: all.len() - todo.len(),
        backend: client
            .as_ref()
            .map_or("rules".into(), |c| c.backend().to_string()),
        ..Default::default()
    };
    if opts.dry_run {
        return Ok(estimate(summary, &todo, client.is_some(), settings));
    }
    let job = Job {
        settings,
        opts,
        clusters: &clusters,
        templates: &templates,
        stop: &stop,
    };
    let mut writer = Writer::open(&opts.out)?;
    let bar = rfm_core::progress::Counter::new("batch", todo.len() as u64);
    match client {
        None => job.with_rules(&todo, &mut writer, &mut summary, &bar)?,
        Some(client) => {
            let client = client.with_rate_limit(opts.rps.unwrap_or(0.0));
            job.with_llm(&client, &todo, &mut writer, &mut summary, &bar)
                .await?;
            add_counts(&mut summary, &client, settings);
        }
    }
    bar.finish();
    summary.remaining = todo.len() - summary.written;
    Ok(summary)
}

/// The segments `--segments` names (by name or file name), or all of them.
fn select_segments(names: Names, opts: &BatchOptions) -> Result<Names> {
    let Some(wanted) = &opts.segments else {
        return Ok(names);
    };
    let mut out = Vec::new();
    for w in wanted {
        let found = names.iter().find(|(_, n)| {
            n.eq_ignore_ascii_case(w)
                || rfm_core::run_folder::slug(n) == rfm_core::run_folder::slug(w)
        });
        match found {
            Some(x) => out.push(x.clone()),
            None => bail!(
                "--segments: no segment `{w}` in {}; segments are: {}",
                opts.run_dir.display(),
                names
                    .iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    Ok(out)
}

/// `--dry-run`: the item count and, with an LLM, the estimated tokens and cost.
fn estimate(mut summary: Summary, todo: &[Item], llm: bool, settings: &BatchSettings) -> Summary {
    // Prompt size from the rendered instructions; output at most the channel's token limit.
    let per_item = |item: &Item| {
        let schema = super::copy::schema(item.channel);
        600 + rfm_llm::schema::token_limit(&schema, settings.llm.max_tokens) as u64
    };
    let tokens = if llm {
        todo.iter().map(per_item).sum()
    } else {
        0
    };
    summary.remaining = todo.len();
    summary.tokens = tokens;
    summary.estimated_cost = tokens as f64
        * (settings.llm.input_cost_per_mtok + settings.llm.output_cost_per_mtok)
        / 2e6;
    summary.stopped = Some(Stopped::DryRun);
    summary
}

/// The client's counts and their cost, into the summary.
fn add_counts(summary: &mut Summary, client: &Client, settings: &BatchSettings) {
    let n = client.counts();
    summary.requests = n.requests;
    summary.retries = n.retries;
    summary.cache_hits = n.cache_hits;
    summary.tokens = n.input_tokens + n.output_tokens;
    summary.estimated_cost = n.input_tokens as f64 * settings.llm.input_cost_per_mtok / 1e6
        + n.output_tokens as f64 * settings.llm.output_cost_per_mtok / 1e6;
}

/// What writing one item needs.
struct Job<'a> {
    settings: &'a BatchSettings<'a>,
    opts: &'a BatchOptions,
    clusters: &'a [ClusterSummary],
    templates: &'a Templates,
    stop: &'a AtomicBool,
}

impl Job<'_> {
    fn cluster_of(&self, i: &Item) -> Result<&ClusterSummary> {
        self.clusters
            .iter()
            .find(|c| c.id == i.cluster)
            .context("cluster missing from clusters.json")
    }

    /// Every item from the offline templates, in order, until a signal.
    fn with_rules(
        &self,
        todo: &[Item],
        writer: &mut Writer,
        summary: &mut Summary,
        bar: &rfm_core::progress::Counter,
    ) -> Result<()> {
        let offers = &self.settings.agent.offers;
        for item in todo {
            if self.stop.load(Ordering::Relaxed) {
                summary.stopped = Some(Stopped::Interrupted);
                break;
            }
            let copy = self
                .templates
                .rules_copy(item, self.cluster_of(item)?, offers)?;
            writer.write(&record(item, copy, CopySource::Rules, None, vec![], 0))?;
            *summary.by_source.entry("rules".into()).or_default() += 1;
            summary.written += 1;
            bar.inc();
        }
        Ok(())
    }

    /// One item through the LLM, or `None` once stopped or over the token budget.
    async fn one(
        &self,
        client: &Client,
        item: &Item,
        budget_hit: &AtomicBool,
    ) -> Option<Result<super::copy::Written, rfm_llm::LlmError>> {
        let n = client.counts();
        if (self.opts.max_tokens_total).is_some_and(|max| n.input_tokens + n.output_tokens >= max) {
            budget_hit.store(true, Ordering::Relaxed);
        }
        if self.stop.load(Ordering::Relaxed) || budget_hit.load(Ordering::Relaxed) {
            return None;
        }
        let c = match self.cluster_of(item) {
            Ok(c) => c,
            Err(e) => return Some(Err(rfm_llm::LlmError::Malformed(e.to_string()))),
        };
        let llm = &self.settings.llm;
        let judge = Judge {
            channel: item.channel,
            locale: &item.locale,
            cluster: c,
            agent: self.settings.agent,
            templates: self.templates,
        };
        let limits = (llm.temperature, llm.max_tokens);
        Some(write(client, &judge, item, self.opts.variants, limits).await)
    }

    /// The items through the LLM, `concurrency` at a time, each written as it ends.
    async fn with_llm(
        &self,
        client: &Client,
        todo: &[Item],
        writer: &mut Writer,
        summary: &mut Summary,
        bar: &rfm_core::progress::Counter,
    ) -> Result<()> {
        use futures::stream::{self, StreamExt};
        let budget_hit = AtomicBool::new(false);
        let budget_hit = &budget_hit;
        let mut results = stream::iter(todo)
            .map(|item| async move { (item, self.one(client, item, budget_hit).await) })
            .buffer_unordered(self.opts.concurrency.max(1));
        while let Some((item, result)) = results.next().await {
            let Some(w) = result.transpose()? else {
                continue;
            };
            if let Some(f) = &w.fallback {
                summary
                    .fallbacks
                    .push((item.key.clone(), f.message.clone()));
                *summary
                    .fallback_reasons
                    .entry(f.reason.to_string())
                    .or_default() += 1;
            }
            for v in &w.violations {
                *summary.violations.entry(v.clone()).or_default() += 1;
            }
            *summary.by_source.entry(w.source.to_string()).or_default() += 1;
            let (reason, violations) = (w.fallback, w.violations);
            writer.write(&record(
                item, w.copy, w.source, reason, violations, w.tokens,
            ))?;
            summary.written += 1;
            let n = client.counts();
            let tokens = n.input_tokens + n.output_tokens;
            bar.step(&format!(
                "{} fall-backs, {tokens} tokens",
                summary.fallbacks.len()
            ));
        }
        if self.stop.load(Ordering::Relaxed) {
            summary.stopped = Some(Stopped::Interrupted);
        } else if budget_hit.load(Ordering::Relaxed) {
            let budget = self.opts.max_tokens_total.unwrap_or(0);
            summary.stopped = Some(Stopped::TokenBudget(budget));
        }
        Ok(())
    }
}

fn record(
    item: &Item,
    copy: Copy,
    source: CopySource,
    reason: Option<Fallback>,
    violations: Vec<String>,
    tokens: u64,
) -> Record {
    Record {
        key: item.key.clone(),
        segment: item.segment.clone(),
        cluster: item.cluster,
        channel: item.channel,
        locale: item.locale.clone(),
        tone: item.tone.clone(),
        variant: item.variant,
        copy,
        source,
        fallback: reason,
        violations,
        tokens,
    }
}
