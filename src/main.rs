//! The `rfm-agent` binary: parses arguments, sets up logging, runs one command and prints
//! any error with its chain of causes.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use tracing_subscriber::EnvFilter;

use rfm_agent::cli::{
    AgentArgs, AgentFormat, BatchArgs, Cli, Command, CompareArgs, ConvertArgs, ElbowArgs,
    ShortFormat,
};
use rfm_agent::run_folder::{Document, ElbowFile, MigrationFile};
use rfm_agent::settings::{EngineEnvironment, Settings};
use rfm_agent::{agent, compare, convert, output, pipeline, progress, report, sample, words};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (the Rust bindings do not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // The pass frees a piece's columns and allocates the next piece's a few milliseconds
    // later; returning the memory to the kernel in between (mimalloc's default, after 10 ms)
    // made the kernel zero fresh pages for every piece. Freed memory is kept half a second
    // for reuse, then returned (the service must not keep a large run's peak for ever).
    // SAFETY: sets a plain option before any thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 500) };
    rfm_agent::tls::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Work still on blocking threads (a stopped service's runs) ends with the process.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if let Some(kib) = rfm_agent::sysmem::peak_kib(None) {
        tracing::info!("peak memory {} MiB", kib.div_ceil(1024));
    }
    match outcome {
        Ok(code) => code,
        Err(e) if rfm_core::scan::was_stopped(&e) => {
            eprintln!("stopped (interrupted); nothing was written");
            ExitCode::from(130)
        }
        Err(e) => {
            let text = words::render(&e, words::FrontEnd::Cli);
            eprintln!("error: {}", rfm_agent::bounded::message(&text));
            ExitCode::FAILURE
        }
    }
}

/// Clap's message. A bad value (a k out of range, an unknown encoding) is bad input and
/// exits 1 like every other; a wrong command line exits 2, as clap does; help and version 0.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind::*;
    let _ = e.print();
    match e.kind() {
        DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => {
            ExitCode::SUCCESS
        }
        InvalidValue | ValueValidation => ExitCode::FAILURE,
        _ => ExitCode::from(2),
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    if quiet {
        progress::hide_all();
    }
    // async-openai logs whole response bodies at error level; its errors are reported by us.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},async_openai=off")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

/// Runs one command. Commands that wait on the network (agent, batch, serve) are async on
/// the one runtime `main` owns; the CPU-bound pipeline runs on its blocking threads.
async fn run(cli: Cli) -> Result<ExitCode> {
    // A service run's settings come whole in its spec, not from files or the environment.
    if let Command::RunJob = cli.command {
        return Ok(rfm_agent::server::job::main().await);
    }
    let mut settings = Settings::load(cli.config.as_deref())?;
    // The engines' password and Spark's address from the environment, read here once. The
    // service reads them itself into the secrets each run's process is handed.
    if !matches!(cli.command, Command::Serve(_)) {
        EngineEnvironment::read(&settings.engine).fill(&mut settings.engine);
    }
    match cli.command {
        Command::Segment(args) => {
            args.apply(&mut settings).map_err(anyhow::Error::msg)?;
            let run = segment_off_the_runtime(&settings).await?;
            if !settings.output.dir.is_empty() {
                report::write_run(
                    &run,
                    None,
                    &settings.output.currency,
                    Path::new(&settings.output.dir),
                )?;
            }
            print(&output::render(&run, settings.output.format)?)
        }
        Command::Agent(args) => agent_command(args, settings).await,
        Command::Sample(args) => sample_command(&args.out),
        Command::Elbow(args) => elbow_command(args, settings).await,
        Command::Clv(args) => clv_command(args, settings).await,
        Command::Compare(args) => compare_command(args),
        Command::Batch(args) => batch_command(args, settings).await,
        Command::Serve(args) => {
            let token = rfm_agent::server::checked_token(args.token.clone())?;
            rfm_agent::server::check_bind(args.bind, token.as_deref())?;
            let state = rfm_agent::server::AppState::new(&args.data_dir, settings, token)?;
            rfm_agent::server::serve(state, args.bind).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert(args) => convert_command(args, settings),
        Command::RunJob => unreachable!("handled above"),
        Command::Healthcheck(args) => {
            let wait = std::time::Duration::try_from_secs_f64(args.timeout)
                .map_err(|_| anyhow::anyhow!("--timeout {}: give seconds, e.g. 3", args.timeout))?;
            rfm_agent::server::probe::healthcheck(&args.url, wait).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn agent_command(args: AgentArgs, mut settings: Settings) -> Result<ExitCode> {
    args.run.apply(&mut settings).map_err(anyhow::Error::msg)?;
    args.llm.apply(&mut settings);
    let prompts = match &args.prompts {
        Some(dir) => agent::Prompts::from_dir(dir)?,
        None => agent::Prompts::built_in(),
    }
    .with_currency(&settings.output.currency)
    .with_frequency(settings.rfm.frequency);
    let (fixtures, record) = (args.llm.fixtures.as_deref(), args.llm.record.as_deref());
    let watch = interruptible()?;
    let (run, doc) =
        rfm_agent::agent_run::run(&settings, &prompts, fixtures, record, &watch).await?;
    if !settings.output.dir.is_empty() {
        report::write_run(
            &run,
            Some(&doc),
            &settings.output.currency,
            Path::new(&settings.output.dir),
        )?;
    }
    print(&match args.format {
        AgentFormat::Json => doc.to_json(),
        AgentFormat::Markdown => output::campaigns::markdown(&doc.campaigns),
        AgentFormat::Table => output::table::campaigns(&run, &doc)?,
    })
}

fn sample_command(out: &Path) -> Result<ExitCode> {
    let bytes = sample::generate(&sample::SampleSpec::default());
    let name = out.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".csv") {
        output::write_file(out, &bytes)?;
    } else {
        // Other formats go through `convert` from a staged CSV.
        let staged = tempfile::Builder::new().suffix(".csv").tempfile()?;
        std::fs::write(staged.path(), &bytes)?;
        let opts = convert::ConvertOptions {
            sheet_name: "Online Retail".into(),
            ..Default::default()
        };
        convert::convert(staged.path(), &Default::default(), out, &opts)?;
    }
    eprintln!("wrote the built-in sample to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The pipeline on a blocking thread (a database engine waits on the runtime from there).
async fn segment_off_the_runtime(settings: &Settings) -> Result<rfm_agent::run::SegmentRun> {
    let s = settings.clone();
    interruptible()?
        .blocking(move || pipeline::run_segment(&s))
        .await?
}

/// A watch that Ctrl-C (or SIGTERM) stops: the pass ends at its next piece, and the command
/// exits 130 having written nothing; a second signal ends the process at once.
fn interruptible() -> Result<progress::Watch> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(progress::Watch::stoppable(stop))
}

async fn elbow_command(args: ElbowArgs, mut settings: Settings) -> Result<ExitCode> {
    args.run.apply(&mut settings).map_err(anyhow::Error::msg)?;
    // The sweep needs the RFM table only.
    settings.predict.enabled = false;
    let run = segment_off_the_runtime(&settings).await?;
    let result = pipeline::sweep(&run.rfm, &settings, &run.source.path)?;
    let json = ElbowFile::new(result.clone()).to_json();
    if !settings.output.dir.is_empty() {
        let chart = report::charts::elbow_chart(&result)?;
        output::write_files(
            Path::new(&settings.output.dir),
            &[
                (ElbowFile::FILE, json.as_bytes()),
                ("elbow.png", &chart.png),
                ("elbow.svg", chart.svg.as_bytes()),
            ],
        )?;
    }
    print(&match args.format {
        ShortFormat::Json => json,
        ShortFormat::Table => report::elbow_table(&result),
    })
}

async fn clv_command(args: rfm_agent::cli::ClvArgs, mut settings: Settings) -> Result<ExitCode> {
    use rfm_agent::output::clv;
    args.apply(&mut settings).map_err(anyhow::Error::msg)?;
    let run = segment_off_the_runtime(&settings).await?;
    let Some(report) = run.predictions.as_ref().and_then(|p| p.fitted()) else {
        anyhow::bail!("{}: the predictive models were not fitted", run.source.path);
    };
    let json = serde_json::to_string_pretty(report)? + "\n";
    if !settings.output.dir.is_empty() {
        let dir = Path::new(&settings.output.dir);
        report::write_run(&run, None, &settings.output.currency, dir)?;
        let csv = clv::predictions_csv(&run, report)?;
        let mut files = vec![
            ("clv.json".to_string(), json.as_bytes().to_vec()),
            ("predictions.csv".to_string(), csv),
        ];
        if let Some(t) = &report.tracking {
            let chart = report::charts::tracking_chart(t)?;
            files.push(("clv_tracking.png".into(), chart.png));
            files.push(("clv_tracking.svg".into(), chart.svg.into_bytes()));
        }
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
        output::write_files(dir, &files)?;
    }
    print(&match args.format {
        ShortFormat::Json => json,
        ShortFormat::Table => clv::table(report),
    })
}

fn compare_command(args: CompareArgs) -> Result<ExitCode> {
    let before = compare::Side::read(&args.before)?;
    let after = compare::Side::read(&args.after)?;
    let m = compare::compare(&before, &after);
    let json = MigrationFile::new(m.clone()).to_json();
    if let Some(dir) = &args.out {
        let chart = report::charts::migration_chart(&m)?;
        output::write_files(
            dir,
            &[
                (MigrationFile::FILE, json.as_bytes()),
                ("migration.png", &chart.png),
                ("migration.svg", chart.svg.as_bytes()),
            ],
        )?;
    }
    print(&match args.format {
        ShortFormat::Json => json,
        ShortFormat::Table => compare::table(&m),
    })
}

async fn batch_command(args: BatchArgs, mut settings: Settings) -> Result<ExitCode> {
    use rfm_agent::batch::run::{self as batch, BatchOptions, BatchSettings, Stopped};
    args.llm.apply(&mut settings);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once; the first stops cleanly.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let (fixtures, record) = (args.llm.fixtures.as_deref(), args.llm.record.as_deref());
    let client = rfm_agent::llm::Client::from_settings(&settings.llm, fixtures, record)?;
    let opts = BatchOptions {
        run_dir: args.run.clone(),
        segments: args.segments.clone(),
        channels: args.channels.clone(),
        locales: args.locales.clone(),
        tones: args.tones.clone(),
        variants: args.variants.max(1),
        out: args.out.clone(),
        concurrency: args.concurrency.unwrap_or(settings.llm.concurrency),
        rps: args.rps,
        max_tokens_total: args.max_tokens_total,
        dry_run: args.dry_run,
        prompts: args.prompts.clone(),
    };
    let parts = BatchSettings {
        currency: &settings.output.currency,
        llm: &settings.llm,
        agent: &settings.agent,
    };
    let summary = batch::run(&parts, &opts, client, stop).await?;
    let json = serde_json::to_string_pretty(&summary)? + "\n";
    if !args.dry_run {
        let mut name = args.out.as_os_str().to_owned();
        name.push(".summary.json");
        output::write_file(Path::new(&name), json.as_bytes())?;
    }
    print(&match args.format {
        ShortFormat::Json => json,
        ShortFormat::Table => output::batch::table(&summary, &opts),
    })?;
    // Interrupted: finished items are in the file; a rerun resumes.
    Ok(match summary.stopped {
        Some(Stopped::Interrupted) => ExitCode::from(130),
        _ => ExitCode::SUCCESS,
    })
}

fn convert_command(args: ConvertArgs, mut settings: Settings) -> Result<ExitCode> {
    args.input
        .apply(&mut settings)
        .map_err(anyhow::Error::msg)?;
    if settings.input.path.is_empty() {
        anyhow::bail!("convert needs --input FILE");
    }
    let read = pipeline::read_options(&settings);
    let opts = convert::ConvertOptions {
        sheet_name: args.sheet_name,
        latin1: args.latin1,
        float_ids: args.float_ids,
    };
    let rows = convert::convert(Path::new(&settings.input.path), &read, &args.out, &opts)
        .with_context(|| format!("cannot convert {}", settings.input.path))?;
    eprintln!("wrote {rows} rows to {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Prints to stdout; a closed pipe (e.g. `| head`) is not an error.
fn print(text: &str) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => other.map(|_| ExitCode::SUCCESS).map_err(Into::into),
    }
}
