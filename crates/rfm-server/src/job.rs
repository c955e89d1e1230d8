//! A run in its own process (`rfm-agent run-job`, started by the service only): reads its
//! spec from standard input, computes the run as the service did in-process (segments,
//! campaigns, charts, report, into the run folder), and says how it goes on standard output
//! (spec.rs). The readers that parse an upload (calamine, polars, the Parquet reader) run
//! here, so that whatever they do ends with this process and never with the service.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::spec::{Event, MAX_SPEC, RunSpec, SCHEMA};
use rfm_campaigns::agent::Prompts;
use rfm_core::progress::Watch;
use rfm_run::words::{self, FrontEnd};

/// The exit status of a run whose code panicked: the service reports an internal error
/// with an id, and logs what the process wrote on its standard error.
pub const PANICKED: u8 = 70;

/// Runs the spec on standard input; exit 0 when the run folder is written, 1 when the run
/// failed (the reason is on standard output), [`PANICKED`] on a bug.
pub async fn main() -> ExitCode {
    // A panic on any thread ends the process at once: its text stays in the service's log
    // and never reaches a client as the run's error.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::exit(i32::from(PANICKED));
    }));
    // Outputs hold customer data: the run folder's files are its owner's only, as the
    // service's own are.
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    rfm_report::output::keep_files_private();
    let spec = match read_spec() {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("run-job: {e:#}");
            return ExitCode::from(2);
        }
    };
    let (upload, dir) = (spec.upload.clone(), spec.run_dir.clone());
    let outcome = run(spec).await;
    let peak_mib = rfm_core::sysmem::peak_kib(None).unwrap_or(0).div_ceil(1024);
    let (event, code) = match outcome {
        Ok(()) => (Event::Done { peak_mib }, ExitCode::SUCCESS),
        Err(e) => {
            let message = plain_error(&e, &dir, &upload);
            (Event::Failed { message, peak_mib }, ExitCode::FAILURE)
        }
    };
    say(&event);
    code
}

fn read_spec() -> Result<RunSpec> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_SPEC)
        .read_to_string(&mut text)
        .context("cannot read the run's spec")?;
    let spec: RunSpec = serde_json::from_str(&text).context("the run's spec is not valid")?;
    if spec.schema != SCHEMA {
        anyhow::bail!(
            "the run's spec has schema {}, this program reads {SCHEMA}",
            spec.schema
        );
    }
    Ok(spec)
}

/// One event on standard output (the service reads it as it comes).
fn say(event: &Event) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(event.line().as_bytes());
    let _ = out.flush();
}

/// Each step as progress: pipeline steps fill 2..60 %, the campaigns 60..80 %.
fn observer(n: usize, total: usize, what: &str) {
    let percent = (58 * n.saturating_sub(1))
        .checked_div(total)
        .map_or(65, |p| (2 + p) as u8);
    say(&Event::Progress {
        what: what.to_string(),
        percent,
    });
}

async fn run(spec: RunSpec) -> Result<()> {
    let RunSpec {
        mut settings,
        secrets,
        run_dir,
        first,
        fault,
        ..
    } = spec;
    secrets.restore(&mut settings);
    say(&Event::Progress {
        what: first,
        percent: 2,
    });
    if let Some(fault) = fault {
        fault.strike();
    }
    let prompts_dir = run_dir.join("prompts");
    let prompts = if prompts_dir.join("segments.toml").exists() {
        Prompts::from_dir(&prompts_dir)?
    } else {
        Prompts::built_in()
    }
    .with_currency(&settings.output.currency)
    .with_frequency(settings.rfm.frequency);
    let watch = Watch::new(observer, Default::default());
    let (run, doc) = rfm_run::agent_run::run(&settings, &prompts, None, None, &watch).await?;
    say(&Event::Progress {
        what: "drawing charts and writing the report".into(),
        percent: 80,
    });
    let out = run_dir.join("out");
    watch
        .blocking(move || {
            rfm_report::report::write_run(&run, Some(&doc), &settings.output.currency, &out)
        })
        .await?
}

/// The error chain in words with its remedy said as the dashboard and the API say it, and
/// the service's own paths taken out: `upload` (the stored upload's path, empty for the
/// sample) and the run folder.
fn plain_error(e: &anyhow::Error, dir: &Path, upload: &str) -> String {
    let mut text = words::render(e, FrontEnd::Service);
    if !upload.is_empty() {
        text = text.replace(upload, "the uploaded file");
    }
    let text = text.replace(&dir.display().to_string(), "the run folder");
    rfm_core::bounded::message(&text).to_string()
}
