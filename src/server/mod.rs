//! The service (work in progress, issue 6): `fn app(state) -> Router` with the versioned
//! JSON API; runs work in the background and persist under `--data-dir`.

pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::settings::Settings;
use store::Store;

/// What every handler shares.
pub struct AppState {
    pub data_dir: PathBuf,
    pub store: Store,
    pub settings: Settings,
    /// Required as `Authorization: Bearer …` when set.
    pub token: Option<String>,
    pub max_upload_bytes: usize,
    pub max_active_runs: usize,
}

/// Every error the API returns, mapped to a status and a JSON body in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong token: send `Authorization: Bearer TOKEN`")]
    Unauthorized,
    #[error("no run `{0}`")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} runs are already in progress; try again when one has finished")]
    Busy(usize),
    #[error("the upload is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, axum::Json(json!({"error": self.to_string()}))).into_response()
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

type Shared = Arc<AppState>;

/// Run ids are 16 lowercase hex digits: nothing else reaches the file system.
fn valid_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(ApiError::NotFound(id.chars().take(40).collect()))
    }
}

fn check_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.token else {
        return Ok(());
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if sent == Some(token.as_str()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The application.
pub fn app(state: Shared) -> Router {
    let limit = state.max_upload_bytes;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/v1/runs", get(list_runs).post(create_run))
        .route("/v1/runs/{id}", get(get_run).delete(delete_run))
        .route("/v1/runs/{id}/files/{name}", get(get_file))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn readyz(State(s): State<Shared>) -> Result<&'static str, ApiError> {
    s.store.active()?;
    Ok("ready")
}

async fn list_runs(
    State(s): State<Shared>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    check_token(&s, &headers)?;
    Ok(axum::Json(json!({"runs": s.store.list()?})))
}

async fn get_run(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    check_token(&s, &headers)?;
    valid_id(&id)?;
    let run = s
        .store
        .get(&id)?
        .ok_or_else(|| ApiError::NotFound(id.clone()))?;
    let out = s.data_dir.join("runs").join(&id).join("out");
    let read = |name: &str| {
        std::fs::read(out.join(name))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    };
    let files: Vec<String> = std::fs::read_dir(&out)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| format!("/v1/runs/{id}/files/{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    Ok(axum::Json(json!({
        "run": run,
        "clusters": read("clusters.json"),
        "campaigns": read("campaigns.json"),
        "files": files,
    })))
}

async fn delete_run(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_token(&s, &headers)?;
    valid_id(&id)?;
    if !s.store.delete(&id)? {
        return Err(ApiError::NotFound(id));
    }
    let _ = std::fs::remove_dir_all(s.data_dir.join("runs").join(&id));
    Ok(StatusCode::NO_CONTENT)
}

async fn get_file(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_token(&s, &headers)?;
    valid_id(&id)?;
    // One plain file name: no separators, no leading dot.
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) || name.contains("..")
    {
        return Err(ApiError::NotFound(name));
    }
    let path = s.data_dir.join("runs").join(&id).join("out").join(&name);
    let bytes = std::fs::read(&path).map_err(|_| ApiError::NotFound(name.clone()))?;
    let kind = match name.rsplit('.').next().unwrap_or("") {
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        _ => "application/octet-stream",
    };
    Ok(([(header::CONTENT_TYPE, kind)], bytes).into_response())
}

fn new_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().r#gen::<u64>())
}

async fn create_run(
    State(s): State<Shared>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<impl IntoResponse, ApiError> {
    check_token(&s, &headers)?;
    if s.store.active()? >= s.max_active_runs {
        return Err(ApiError::Busy(s.max_active_runs));
    }
    let limit = s.max_upload_bytes;
    let form_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(limit)
        } else {
            ApiError::BadRequest(e.body_text())
        }
    };
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut options = serde_json::Map::new();
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            let fname = field.file_name().unwrap_or("upload.csv").to_string();
            let bytes = field.bytes().await.map_err(form_error)?;
            file = Some((fname, bytes.to_vec()));
        } else {
            let v = field.text().await.map_err(form_error)?;
            options.insert(name, serde_json::Value::String(v));
        }
    }
    let id = new_id();
    let dir = s.data_dir.join("runs").join(&id);
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut settings = s.settings.clone();
    let input_name = match &file {
        Some((fname, bytes)) => {
            // Keep only the extension of the client's name.
            let ext = std::path::Path::new(fname)
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .filter(|e| ["csv", "gz", "tsv", "txt", "xlsx", "parquet"].contains(&e.as_str()))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "`{fname}`: upload a .csv, .csv.gz, .xlsx or .parquet file"
                    ))
                })?;
            let stored = if fname.to_ascii_lowercase().ends_with(".csv.gz") {
                "input.csv.gz".to_string()
            } else {
                format!("input.{ext}")
            };
            std::fs::write(dir.join(&stored), bytes)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            settings.input.path = dir.join(&stored).display().to_string();
            fname.clone()
        }
        None => "<built-in sample>".to_string(),
    };
    if let Some(k) = options.get("k").and_then(|v| v.as_str()) {
        settings.cluster.k = k.parse().map_err(ApiError::BadRequest)?;
    }
    settings.output.dir = dir.join("out").display().to_string();
    let opts = serde_json::Value::Object(options);
    s.store.insert(&id, &input_name, &opts)?;
    let state = s.clone();
    let run_id = id.clone();
    tokio::task::spawn_blocking(move || {
        let _ =
            state
                .store
                .set_status(&run_id, "running", "segmenting and writing campaigns", None);
        let result = (|| -> anyhow::Result<()> {
            let prompts = crate::agent::Prompts::built_in()
                .with_currency(&settings.output.currency)
                .with_frequency(settings.rfm.frequency);
            let (run, doc) = crate::agent::run::run(&settings, &prompts, None, None)?;
            crate::report::write_run(
                &run,
                Some(&doc),
                &settings,
                std::path::Path::new(&settings.output.dir),
            )
        })();
        let _ = match result {
            Ok(()) => state.store.set_status(&run_id, "done", "", None),
            Err(e) => state
                .store
                .set_status(&run_id, "failed", "", Some(&format!("{e:#}"))),
        };
    });
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": id, "status": "queued", "url": format!("/v1/runs/{id}")})),
    ))
}
