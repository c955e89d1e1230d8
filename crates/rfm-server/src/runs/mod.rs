//! The runs API: upload and start, status with results, list, files, campaigns rerun,
//! delete, and the migration between two runs.

use crate::store::{RunRecord, RunStatus};
use rfm_core::run_folder::RunFolder;
use std::path::Path as FsPath;

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use super::datadir::run_dir;
use super::store::Requeue;
use super::worker::{self, Job};
use super::{ApiError, Shared, options};

mod campaigns;
mod compare;
mod files;
mod upload;

pub use campaigns::{CAMPAIGNS_BODY, campaigns};
pub use compare::compare;
pub use files::file;
use upload::{read_form, stored_name};

/// Run ids are 16 lowercase hex digits: nothing else reaches the file system.
fn valid_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no run `{}`: run ids are 16 hexadecimal digits",
            id.chars().take(40).collect::<String>()
        )))
    }
}

fn new_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().r#gen::<u64>())
}

/// Longest form field name, option value and upload file name accepted (and echoed).
use options::MAX_VALUE as MAX_OPTION_VALUE;
const MAX_FILE_NAME: usize = 255;

fn busy(s: &Shared) -> ApiError {
    ApiError::Busy {
        running: s.settings.server.max_running.max(1),
        queued: s.settings.server.max_queued,
    }
}

pub async fn readyz(State(s): State<Shared>) -> Result<&'static str, ApiError> {
    s.store.active()?;
    Ok("ready")
}

/// `GET /v1/runs?limit=&after=`: one page of runs, newest first.
#[derive(serde::Deserialize)]
pub struct Page {
    limit: Option<usize>,
    after: Option<String>,
}

/// Runs a page holds by default, and at most.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

pub async fn list(
    State(s): State<Shared>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let after = match &page.after {
        Some(c) => Some(RunRecord::parse_cursor(c).ok_or_else(|| {
            ApiError::BadRequest("`after` must be the `next` of an earlier page".into())
        })?),
        None => None,
    };
    let mut runs = s.store.page(limit + 1, after)?;
    let next = (runs.len() > limit).then(|| {
        runs.truncate(limit);
        runs.last().map(RunRecord::cursor)
    });
    Ok(Json(json!({"runs": runs, "next": next.flatten()})))
}

pub async fn create(
    State(s): State<Shared>,
    form: Multipart,
) -> Result<impl IntoResponse, ApiError> {
    let (file, opts) = read_form(&s, form).await?;
    let mut settings = s.settings.clone();
    options::apply(&mut settings, &opts).map_err(ApiError::BadRequest)?;
    let sample = options::wants_sample(&opts);
    let source = options::source(&opts);
    let stored = match (&file, sample || source.is_some()) {
        (Some(_), true) => {
            return Err(ApiError::BadRequest(
                "send one of a file, sample=true or source=NAME, not more".into(),
            ));
        }
        _ if sample && source.is_some() => {
            return Err(ApiError::BadRequest(
                "send one of a file, sample=true or source=NAME, not more".into(),
            ));
        }
        (None, false) => {
            return Err(ApiError::BadRequest(
                "no file: attach one as the form field `file`, send sample=true to try the \
                 built-in sample, or source=NAME for one of the service's data sources"
                    .into(),
            ));
        }
        (Some((name, _, size)), false) => {
            if *size == 0 {
                return Err(ApiError::BadRequest(format!("`{name}` is empty")));
            }
            Some(stored_name(name)?)
        }
        (None, true) => None,
    };
    let input_name = match (&file, &source) {
        (Some((name, _, _)), _) => name.clone(),
        (None, Some(src)) => format!("source {src}"),
        (None, None) => "built-in sample".to_string(),
    };
    let id = new_id();
    let dir = run_dir(&s.data_dir, &id);
    if !s.store.insert(
        &id,
        &input_name,
        &Value::Object(opts.clone()),
        s.max_active(),
    )? {
        return Err(busy(&s));
    }
    let prepared = (|| -> Result<(), ApiError> {
        std::fs::create_dir_all(&dir)?;
        if let (Some((_, tmp, _)), Some(stored)) = (file, &stored) {
            tmp.persist(dir.join(stored)).map_err(|e| e.error)?;
        }
        Ok(())
    })();
    if let Err(e) = prepared {
        let _ = s.store.delete(&id);
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    configure(&mut settings, &dir, stored.as_deref(), source.is_some());
    worker::start(s.clone(), id.clone(), settings, Job::Full);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/runs/{id}"))],
        Json(json!({"id": id, "status": RunStatus::Queued, "url": format!("/v1/runs/{id}")})),
    ))
}

/// Points the settings at the run's stored upload (none: the built-in sample, unless the run
/// reads a named source, which the options already set) and output.
fn configure(
    settings: &mut rfm_run::settings::Settings,
    dir: &FsPath,
    stored: Option<&str>,
    from_source: bool,
) {
    if !from_source {
        settings.input.path = match stored {
            Some(name) => dir.join(name).display().to_string(),
            None => String::new(),
        };
    }
    settings.output.dir = dir.join("out").display().to_string();
}

/// The stored upload of a run, if it had one.
fn stored_upload(dir: &FsPath) -> Option<String> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("input.").then_some(name)
        })
}

/// A finished run's folder, read and checked off the async threads. A folder this build
/// cannot read (another schema) is reported in the log and shown without its results.
async fn read_folder(out: std::path::PathBuf) -> Result<Option<RunFolder>, ApiError> {
    let read = tokio::task::spawn_blocking(move || RunFolder::open(&out))
        .await
        .map_err(ApiError::internal)?;
    Ok(read.inspect_err(|e| tracing::warn!("{e}")).ok())
}

/// Every output file of a run with its URL: top level and `segments/`.
fn output_files(id: &str, out: &FsPath) -> Vec<Value> {
    let mut files = Vec::new();
    for sub in ["", "segments"] {
        let Ok(entries) = std::fs::read_dir(out.join(sub)) else {
            continue;
        };
        let mut names: Vec<(String, u64)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                (e.file_name().to_string_lossy().into_owned(), size)
            })
            .filter(|(n, _)| !n.starts_with('.'))
            .collect();
        names.sort();
        for (name, size) in names {
            let rel = if sub.is_empty() {
                name
            } else {
                format!("{sub}/{name}")
            };
            files.push(
                json!({"name": rel, "bytes": size, "url": format!("/v1/runs/{id}/files/{rel}")}),
            );
        }
    }
    files
}

pub async fn get(State(s): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    valid_id(&id)?;
    let run = s
        .store
        .get(&id)?
        .ok_or_else(|| ApiError::NotFound(format!("no run `{id}`")))?;
    let out = run_dir(&s.data_dir, &id).join("out");
    let folder = match run.status {
        RunStatus::Done => read_folder(out.clone()).await?,
        _ => None,
    };
    let clusters = folder.as_ref().map(|f| &f.clusters);
    let campaigns = folder.as_ref().and_then(|f| f.campaigns.as_ref());
    let charts: Vec<Value> = [
        "customer_segments",
        "cluster_boxplots",
        "segment_value",
        "predicted_value",
        "elbow",
    ]
        .iter()
        .filter(|c| out.join(format!("{c}.png")).exists())
        .map(|c| {
            json!({"name": c, "png": format!("/v1/runs/{id}/files/{c}.png"), "svg": format!("/v1/runs/{id}/files/{c}.svg")})
        })
        .collect();
    Ok(Json(json!({
        "run": run,
        "ledger": clusters.map(|c| &c.ledger),
        "clusters": clusters,
        "campaigns": campaigns,
        "charts": charts,
        "files": output_files(&id, &out),
    })))
}

pub async fn delete(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    valid_id(&id)?;
    if s.store.get(&id)?.is_none() {
        return Err(ApiError::NotFound(format!("no run `{id}`")));
    }
    s.store.delete(&id)?;
    // A queued or computing run stops at its next step; its worker removes the folder
    // once nothing writes to it any more.
    if s.stop(&id) {
        return Ok(StatusCode::NO_CONTENT);
    }
    let dir = run_dir(&s.data_dir, &id);
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(StatusCode::NO_CONTENT)
}
