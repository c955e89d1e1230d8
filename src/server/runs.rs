//! The runs API: upload and start, status with results, list, files, campaigns rerun,
//! delete, and the migration between two runs.

use crate::run_folder::RunFolder;
use crate::server::store::{RunRecord, RunStatus};
use std::path::Path as FsPath;

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use super::store::Requeue;
use super::worker::{self, Job, run_dir};
use super::{ApiError, Shared, options};

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

/// Upload extensions accepted, and the name the upload is stored under.
fn stored_name(client_name: &str) -> Result<String, ApiError> {
    let lower = client_name.to_ascii_lowercase();
    let ext = [
        ".csv.gz", ".tsv.gz", ".txt.gz", ".csv", ".tsv", ".txt", ".xlsx", ".parquet",
    ]
    .into_iter()
    .find(|e| lower.ends_with(e))
    .ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{client_name}` is not a file this service reads: upload a .csv (or .csv.gz), \
             .xlsx or .parquet file"
        ))
    })?;
    Ok(format!("input{ext}"))
}

/// Refuses a form field by its name alone, before its value is read: `file` and the run's
/// options are the only fields.
fn check_field_name(name: &str) -> Result<(), ApiError> {
    match name {
        "file" => Ok(()),
        _ => options::check_name(name).map_err(ApiError::BadRequest),
    }
}

/// The uploaded file (client's name, where it was streamed to, size) and the options.
type Form = (
    Option<(String, tempfile::TempPath, u64)>,
    Map<String, Value>,
);

/// Form fields read at most (the file, and each option once, with room to spare): each
/// option may come once and each is at most 4 KB, so the options take 40 KB at most.
const MAX_FIELDS: usize = 32;

/// Reads the upload form: the file streams to a temporary file beside the runs, never whole
/// into memory; a field is refused at its header when its name is not one the form takes,
/// and the number of fields and the bytes of the options are bounded as they are read.
async fn read_form(s: &Shared, mut form: Multipart) -> Result<Form, ApiError> {
    let limit_mb = s.settings.server.max_upload_mb;
    let form_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(limit_mb)
        } else {
            ApiError::BadRequest(format!(
                "the upload form could not be read: {}",
                e.body_text()
            ))
        }
    };
    let mut file = None;
    let (mut opts, mut fields) = (Map::new(), 0usize);
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or("").to_string();
        check_field_name(&name)?;
        fields += 1;
        if fields > MAX_FIELDS || (name != "file" && opts.contains_key(&name)) {
            return Err(ApiError::BadRequest(format!(
                "the form has more than {MAX_FIELDS} fields or a field twice (`{name}`); send the \
                 file and each option once"
            )));
        }
        if name != "file" {
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(form_error)? {
                value.extend_from_slice(&chunk);
                if value.len() > MAX_OPTION_VALUE {
                    return Err(ApiError::BadRequest(format!(
                        "the option `{name}` is longer than {MAX_OPTION_VALUE} bytes; send a shorter value"
                    )));
                }
            }
            let value = String::from_utf8(value).map_err(|_| {
                ApiError::BadRequest(format!("the option `{name}` is not UTF-8 text"))
            })?;
            opts.insert(name, Value::String(value));
            continue;
        }
        let client_name = field.file_name().unwrap_or("").to_string();
        if client_name.len() > MAX_FILE_NAME {
            return Err(ApiError::BadRequest(format!(
                "the file name `{}` has {} bytes, over {MAX_FILE_NAME}; rename the file",
                crate::bounded::value(&client_name, crate::bounded::MAX_VALUE),
                client_name.len()
            )));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(s.data_dir.join("runs"))?
            .into_temp_path();
        let mut out = tokio::fs::File::create(&tmp).await?;
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            size += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        if !client_name.is_empty() || size > 0 {
            file = Some((client_name, tmp, size)); // else an empty file input
        }
    }
    Ok((file, opts))
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
    settings: &mut crate::settings::Settings,
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

/// One plain name, or `segments/` and one plain name: no separators, dots or traversal.
fn valid_file(path: &str) -> bool {
    let plain = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match path.split_once('/') {
        None => plain(path),
        Some(("segments", rest)) => plain(rest),
        Some(_) => false,
    }
}

pub async fn file(
    State(s): State<Shared>,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    valid_id(&id)?;
    let missing = || ApiError::NotFound(format!("run `{id}` has no file `{path}`"));
    if !valid_file(&path) {
        return Err(missing());
    }
    let full = run_dir(&s.data_dir, &id).join("out").join(&path);
    let bytes = tokio::fs::read(&full).await.map_err(|_| missing())?;
    let ext = path.rsplit('.').next().unwrap_or("");
    let kind = match ext {
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        _ => "application/octet-stream",
    };
    let mut resp = ([(header::CONTENT_TYPE, kind)], bytes).into_response();
    let h = resp.headers_mut();
    // The report is self-contained: no scripts, nothing fetched.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'",
        ),
    );
    if matches!(ext, "csv" | "json" | "md") {
        let download = path.replace('/', "-");
        if let Ok(v) =
            header::HeaderValue::from_str(&format!("attachment; filename=\"{download}\""))
        {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}

/// Largest campaigns-rerun request: two template files of at most 256 KB each.
pub const CAMPAIGNS_BODY: usize = 1 << 20;

/// A campaigns rerun's fields: `llm` into the options, the templates' texts returned.
fn rerun_fields(
    body: &Map<String, Value>,
    opts: &mut Map<String, Value>,
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let mut prompts: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in body {
        match name.as_str() {
            "llm" => {
                opts.insert("llm".into(), value.clone());
            }
            "segments_toml" | "llm_toml" => {
                let text = value.as_str().ok_or_else(|| {
                    ApiError::BadRequest(format!("`{name}` must be the file's text"))
                })?;
                let file = if name == "segments_toml" {
                    "segments.toml"
                } else {
                    "llm.toml"
                };
                prompts.push((file, text.to_string()));
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown field `{}`; send `llm`, `segments_toml` and/or `llm_toml`",
                    crate::bounded::value(other, crate::bounded::MAX_VALUE)
                )));
            }
        }
    }
    Ok(prompts)
}

/// `POST /v1/runs/{id}/campaigns`: `{"llm": …, "segments_toml": …, "llm_toml": …}`.
pub async fn campaigns(
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Map<String, Value>>>,
) -> Result<impl IntoResponse, ApiError> {
    valid_id(&id)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let run = s
        .store
        .get(&id)?
        .ok_or_else(|| ApiError::NotFound(format!("no run `{id}`")))?;
    let mut opts = run.options.as_object().cloned().unwrap_or_default();
    let prompts = rerun_fields(&body, &mut opts)?;
    let mut settings = s.settings.clone();
    options::apply(&mut settings, &opts).map_err(ApiError::BadRequest)?;
    let dir = run_dir(&s.data_dir, &id);
    if !prompts.is_empty() {
        if !s.settings.server.allow_custom_templates {
            return Err(ApiError::Forbidden(
                "this service does not take templates from API clients; its operator can \
                 allow them with [server] allow_custom_templates = true"
                    .into(),
            ));
        }
        let dir = dir.clone();
        let files = prompts.clone();
        tokio::task::spawn_blocking(move || check_prompts(&dir, &files))
            .await
            .map_err(ApiError::internal)??;
    }
    let from_source = options::source(&opts).is_some();
    match s.store.requeue(&id, &Value::Object(opts), s.max_active())? {
        Requeue::Queued => {}
        Requeue::Missing => return Err(ApiError::NotFound(format!("no run `{id}`"))),
        Requeue::Active => {
            return Err(ApiError::Conflict(format!(
                "run `{id}` is still in progress; rerun its campaigns once it has finished"
            )));
        }
        Requeue::Full => return Err(busy(&s)),
    }
    if !prompts.is_empty() {
        let new = dir.join("prompts.new");
        let _ = std::fs::remove_dir_all(dir.join("prompts"));
        std::fs::rename(&new, dir.join("prompts"))?;
    }
    configure(
        &mut settings,
        &dir,
        stored_upload(&dir).as_deref(),
        from_source,
    );
    worker::start(s.clone(), id.clone(), settings, Job::Campaigns);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": RunStatus::Queued, "url": format!("/v1/runs/{id}")})),
    ))
}

/// Writes the given prompt files to `prompts.new/` (the others from the run's current
/// prompts or the built-in ones) and parses them; errors name the file.
fn check_prompts(dir: &FsPath, files: &[(&str, String)]) -> Result<(), ApiError> {
    let new = dir.join("prompts.new");
    let _ = std::fs::remove_dir_all(&new);
    std::fs::create_dir_all(&new)?;
    for name in ["segments.toml", "llm.toml"] {
        let text = match files.iter().find(|(n, _)| *n == name) {
            Some((_, t)) => t.clone(),
            None => match std::fs::read_to_string(dir.join("prompts").join(name)) {
                Ok(t) => t,
                Err(_) => crate::agent::prompts::built_in_text(name).to_string(),
            },
        };
        std::fs::write(new.join(name), text)?;
    }
    crate::agent::Prompts::from_dir(&new)
        .map(|_| ())
        .map_err(|e| {
            let _ = std::fs::remove_dir_all(&new);
            ApiError::BadRequest(e.to_string().replace(&format!("{}/", new.display()), ""))
        })
}

#[derive(serde::Deserialize)]
pub struct ComparePair {
    before: String,
    after: String,
}

/// `GET /v1/compare?before=ID&after=ID`: the migration matrix between two finished runs.
pub async fn compare(
    State(s): State<Shared>,
    Query(q): Query<ComparePair>,
) -> Result<Json<Value>, ApiError> {
    let mut folders = Vec::new();
    for id in [&q.before, &q.after] {
        valid_id(id)?;
        let run = s
            .store
            .get(id)?
            .ok_or_else(|| ApiError::NotFound(format!("no run `{id}`")))?;
        if run.status != RunStatus::Done {
            return Err(ApiError::Conflict(format!(
                "run `{id}` is {}; compare needs two finished runs",
                run.status
            )));
        }
        let out = run_dir(&s.data_dir, id).join("out");
        let folder = tokio::task::spawn_blocking(move || crate::compare::Side::read(&out))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        folders.push(folder);
    }
    let m = crate::compare::compare(&folders[0], &folders[1]);
    let mut v = serde_json::to_value(&m).map_err(ApiError::internal)?;
    v["before"] = Value::String(q.before.clone());
    v["after"] = Value::String(q.after.clone());
    if folders[0].frequency != folders[1].frequency {
        v["warning"] = Value::String(format!(
            "the runs count frequency differently ({} and {}); centroids are matched anyway",
            folders[0].frequency.as_str(),
            folders[1].frequency.as_str()
        ));
    }
    Ok(Json(v))
}
