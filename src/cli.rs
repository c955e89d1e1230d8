//! Command-line interface: argument definitions and how flags override the settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use rfm_core::clean::Returns;
use rfm_core::ingest::Encoding;
use rfm_core::options::{DateChoice, Delimiter, InputFormat, KChoice, KRange};
use rfm_core::rfm::Frequency;
use rfm_run::settings::RunOptions;
use rfm_run::settings::{Backend, OutputFormat, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "rfm-agent",
    version,
    about = "Turns an online shop's transactions into RFM customer segments",
    propagate_version = true
)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Settings file (TOML), layered over config/default.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest, clean, compute RFM and cluster customers (the built-in sample if no --input).
    Segment(SegmentArgs),
    /// Segment customers and draft a campaign per segment (rules offline, or an LLM).
    Agent(AgentArgs),
    /// Write the built-in sample transactions (.csv, .csv.gz, .xlsx or .parquet).
    Sample(SampleArgs),
    /// Convert a transactions file to .csv, .csv.gz, .xlsx or .parquet (UCI layout kept).
    Convert(ConvertArgs),
    /// WCSS and silhouette for each k of --k-range (default 2..10), and the recommended k.
    Elbow(ElbowArgs),
    /// Predicted value: BG/NBD + Gamma-Gamma fits, P(alive), expected purchases and CLV.
    Clv(ClvArgs),
    /// Migration of customers between the segments of two runs (their --out folders).
    Compare(CompareArgs),
    /// Campaign copy at volume: segments × channels × locales × tones × variants, as JSONL.
    Batch(BatchArgs),
    /// HTTP service and browser dashboard: upload transactions, get segments and campaigns.
    Serve(ServeArgs),
    /// Exit 0 when a running service answers /healthz (a container's HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
    /// One run of the service, in a process of its own (started by `serve` only: its spec
    /// comes on standard input).
    #[command(hide = true)]
    RunJob,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3.0)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
    /// Where runs, their outputs and the run database live.
    #[arg(long, value_name = "DIR", default_value = "rfm-agent-data")]
    pub data_dir: PathBuf,
    /// Bearer token every request must carry.
    #[arg(long, env = "RFM_AGENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The agent's --out folder (clusters.json and campaigns.json).
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Only these segments (names or file names, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub segments: Option<Vec<String>>,
    /// Channels, comma-separated.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "email")]
    pub channels: Vec<rfm_campaigns::batch::Channel>,
    /// Locales, comma-separated (offline templates: en, de, fr).
    #[arg(long, value_delimiter = ',', default_value = "en")]
    pub locales: Vec<String>,
    /// Tones, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "friendly")]
    pub tones: Vec<String>,
    /// Variants per combination (for A/B tests).
    #[arg(long, default_value_t = 1)]
    pub variants: u32,
    /// Output file; a rerun with the same file resumes.
    #[arg(long, value_name = "FILE.jsonl", default_value = "batch.jsonl")]
    pub out: PathBuf,
    /// Requests in flight at once (default: llm.concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// At most this many requests per second.
    #[arg(long)]
    pub rps: Option<f64>,
    /// Stop cleanly once this many tokens are spent.
    #[arg(long, value_name = "N")]
    pub max_tokens_total: Option<u64>,
    /// Print the item count and the estimated tokens and cost; call nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Folder with batch.toml to use instead of the built-in templates.
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// What to print at the end: table or json.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ShortFormat,
    #[command(flatten)]
    pub llm: LlmArgs,
}

#[derive(Debug, Args)]
pub struct ElbowArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// What to print: table or json.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ShortFormat,
}

#[derive(Debug, Args)]
pub struct ClvArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Period of the purchase histories: day or week (Monday to Sunday).
    #[arg(long, value_enum, value_name = "PERIOD")]
    pub period: Option<rfm_core::rfm::histories::Period>,
    /// Fit on purchases up to this date; the rest is the hold-out the fit is checked on.
    #[arg(long, value_name = "DATE")]
    pub calibration_end: Option<String>,
    /// Days ahead for expected purchases and CLV (default 90).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub horizon: Option<u32>,
    /// Monthly discount rate of the CLV (default 0.01).
    #[arg(long, value_name = "RATE", value_parser = discount_rate)]
    pub discount_rate: Option<f64>,
    /// What to print: table or json.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ShortFormat,
}

fn discount_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..1.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "`{s}` is not a monthly rate between 0 and 1, e.g. 0.01"
        )),
    }
}

impl ClvArgs {
    pub fn apply(&self, s: &mut Settings) -> Result<(), String> {
        if self.run.model.no_predict {
            return Err("`clv` fits the predictive models; drop --no-predict".into());
        }
        self.run.apply(s)?;
        let p = &mut s.predict;
        (p.enabled, p.required) = (true, true);
        p.period = self.period.unwrap_or(p.period);
        if let Some(end) = &self.calibration_end {
            p.calibration_end = end.clone();
        }
        p.horizon_days = self.horizon.unwrap_or(p.horizon_days);
        p.discount_rate = self.discount_rate.unwrap_or(p.discount_rate);
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier run's --out folder.
    #[arg(value_name = "BEFORE_DIR")]
    pub before: PathBuf,
    /// The later run's --out folder.
    #[arg(value_name = "AFTER_DIR")]
    pub after: PathBuf,
    /// What to print: table or json.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ShortFormat,
    /// Write migration.json and the migration chart to this folder.
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq)]
pub enum ShortFormat {
    #[default]
    Table,
    Json,
}

/// Where and how to read transactions.
#[derive(Debug, Args, Default)]
pub struct InputArgs {
    /// Transactions file: .csv/.tsv/.txt (optionally .gz), .xlsx or .parquet.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// File type when the extension does not tell: csv, xlsx or parquet.
    #[arg(long, value_name = "FORMAT")]
    pub format_in: Option<InputFormat>,
    /// CSV delimiter: auto, ",", ";", tab, "|" or whitespace.
    #[arg(long, value_name = "DELIM")]
    pub delimiter: Option<Delimiter>,
    /// Text encoding: auto, utf-8, latin1 or windows-1252 (cp1252).
    #[arg(long, value_name = "ENC")]
    pub encoding: Option<Encoding>,
    /// XLSX sheet (default: the first).
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
    /// Column mapping, e.g. customer=cust_id,date=ordered_at,amount=total,invoice=
    #[arg(long, value_name = "MAP")]
    pub columns: Option<String>,
    /// Date format: auto, excel, epoch-s, epoch-ms, rfc3339 or a strftime pattern.
    #[arg(long, value_name = "FMT")]
    pub date_format: Option<DateChoice>,
    /// Export layout: auto (from the header), none, uci, shopify, woocommerce or stripe.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<rfm_core::ingest::PresetChoice>,
    /// Currency to keep when the export holds several (a code such as USD), or converted.
    #[arg(long, value_name = "CODE")]
    pub currency: Option<rfm_core::ingest::CurrencyChoice>,
    /// Clock for times written with a UTC offset: UTC (default) or an IANA zone name.
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<rfm_core::options::TimeZoneChoice>,
}

/// Where the data lives when it is not a local file.
#[derive(Debug, Args, Default)]
pub struct EngineArgs {
    /// Who runs the pass (auto: PostgreSQL for --input postgres://…, else this machine).
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<rfm_engines::EngineKind>,
    /// With --engine spark: the Spark Connect server, sc://HOST:PORT (else SPARK_REMOTE).
    #[arg(long, value_name = "URL")]
    pub spark_remote: Option<String>,
    /// With --input postgres://USER@HOST:PORT/DB or --engine spark: the table to read.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// With --input postgres://… or --engine spark: a query to read instead of a table.
    #[arg(long, value_name = "SQL")]
    pub query: Option<String>,
    /// Seconds to wait for the engine's connection and its queries (default 60).
    #[arg(long, value_name = "SECS")]
    pub engine_timeout: Option<u64>,
}

/// How customers are measured and clustered.
#[derive(Debug, Args, Default)]
pub struct ModelArgs {
    /// Cancellations: drop them, or net them against the customer's monetary value.
    #[arg(long, value_enum)]
    pub returns: Option<Returns>,
    /// Also remove lines with a zero unit price (free items).
    #[arg(long)]
    pub drop_zero_price: bool,
    /// Frequency as distinct invoices (default) or transaction lines.
    #[arg(long, value_enum)]
    pub frequency: Option<Frequency>,
    /// Snapshot for Recency, e.g. 2011-12-10 (default: last date + 1 day).
    #[arg(long, value_name = "DATE")]
    pub snapshot: Option<String>,
    /// Number of clusters, or `auto` (the elbow rule over --k-range, default 2..10).
    #[arg(short, long, value_name = "K|auto")]
    pub k: Option<KChoice>,
    /// The k range for `--k auto` and the elbow chart, e.g. 2..10 (both ends included).
    #[arg(long, value_name = "MIN..MAX")]
    pub k_range: Option<KRange>,
    /// Random seed for k-means++.
    #[arg(long)]
    pub seed: Option<u64>,
    /// k-means restarts.
    #[arg(long)]
    pub n_init: Option<usize>,
    /// Maximum iterations per restart.
    #[arg(long)]
    pub max_iter: Option<usize>,
    /// Do not fit the predictive models (P(alive), expected purchases, CLV).
    #[arg(long)]
    pub no_predict: bool,
}

/// What every pipeline command takes: the input, the model, and where to write results.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Write the results (customers.csv, clusters.json, …) to this directory.
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SegmentArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// What to print: table, json or csv.
    #[arg(short, long, value_enum)]
    pub format: Option<OutputFormat>,
}

/// How the agent prints its campaigns.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum AgentFormat {
    #[default]
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// What to print: table, json or markdown.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: AgentFormat,
    /// Folder with segments.toml (and optionally llm.toml) to use instead of the built-in templates.
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    #[command(flatten)]
    pub llm: LlmArgs,
}

/// Which LLM writes the campaigns.
#[derive(Debug, Args, Default)]
pub struct LlmArgs {
    /// Backend: auto (a key in the environment picks it), off (rules only), gemini, openai, replay.
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub llm: Option<Backend>,
    /// Model name (default: gemini-2.5-flash / gpt-4o-mini).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// API base URL, e.g. http://127.0.0.1:8080/v1 for a local OpenAI-compatible server.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Recorded responses for --llm replay.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// Save every exchange with a live backend to DIR, for --llm replay.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Ask the backend even when the cache has the answer.
    #[arg(long)]
    pub no_cache: bool,
}

impl LlmArgs {
    /// Applies the flags over the settings.
    pub fn apply(&self, s: &mut Settings) {
        if let Some(b) = self.llm {
            s.llm.backend = b;
        }
        if let Some(m) = &self.model {
            s.llm.model = m.clone();
        }
        if let Some(u) = &self.base_url {
            s.llm.base_url = u.clone();
        }
        if self.no_cache {
            s.llm.cache = false;
        }
    }
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Output file; the extension picks the format.
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output file; the extension picks the format (.csv, .csv.gz, .xlsx, .parquet).
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// Sheet name for .xlsx output.
    #[arg(long, default_value = "Online Retail")]
    pub sheet_name: String,
    /// Re-encode .csv output as Latin-1.
    #[arg(long)]
    pub latin1: bool,
    /// Write customer ids as decimals (17850.0), as pandas does for columns with gaps.
    #[arg(long)]
    pub float_ids: bool,
}

impl InputArgs {
    pub fn apply(&self, s: &mut Settings) -> Result<(), String> {
        let i = &mut s.input;
        if let Some(p) = &self.input {
            i.path = p.display().to_string();
        }
        i.format = self.format_in.unwrap_or(i.format);
        i.delimiter = self.delimiter.unwrap_or(i.delimiter);
        i.encoding = self.encoding.unwrap_or(i.encoding);
        if let Some(v) = &self.sheet {
            i.sheet = v.clone();
        }
        if let Some(d) = &self.date_format {
            i.date_format = d.clone();
        }
        i.preset = self.preset.unwrap_or(i.preset);
        if let Some(c) = &self.currency {
            i.currency = c.clone();
        }
        i.timezone = self.timezone.unwrap_or(i.timezone);
        if let Some(spec) = &self.columns {
            i.columns
                .apply_overrides(spec)
                .map_err(|e| format!("--columns: {e}"))?;
        }
        Ok(())
    }
}

impl EngineArgs {
    pub fn apply(&self, s: &mut Settings) -> Result<(), String> {
        let e = &mut s.engine;
        if let Some(k) = self.engine {
            e.kind = k;
        }
        if let Some(u) = &self.spark_remote {
            if u.contains("token=") {
                return Err("--spark-remote holds a token, which the command line would show to anyone on this machine; put the address in SPARK_REMOTE or [engine] url instead".into());
            }
            e.url = u.clone();
        }
        if let Some(t) = &self.table {
            e.table = t.clone();
        }
        if let Some(q) = &self.query {
            e.query = q.clone();
        }
        e.timeout_secs = self.engine_timeout.unwrap_or(e.timeout_secs);
        Ok(())
    }
}

impl ModelArgs {
    /// The flags as the options every front end shares.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            k: self.k,
            k_range: self.k_range,
            frequency: self.frequency,
            returns: self.returns,
            drop_zero_price: self.drop_zero_price,
            snapshot: self.snapshot.clone(),
            seed: self.seed,
            n_init: self.n_init,
            max_iter: self.max_iter,
            predict: self.no_predict.then_some(false),
            ..RunOptions::default()
        }
    }
}

impl RunArgs {
    pub fn apply(&self, s: &mut Settings) -> Result<(), String> {
        self.input.apply(s)?;
        self.engine.apply(s)?;
        self.model.options().apply(s)?;
        if let Some(dir) = &self.out {
            s.output.dir = dir.display().to_string();
        }
        Ok(())
    }
}

impl SegmentArgs {
    pub fn apply(&self, s: &mut Settings) -> Result<(), String> {
        self.run.apply(s)?;
        if let Some(f) = self.format {
            s.output.format = f;
        }
        Ok(())
    }
}
