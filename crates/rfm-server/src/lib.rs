//! The service: `fn app(state) -> Router` with the versioned JSON API under `/v1`, the
//! dashboard at `/`, and the OpenAPI document; runs work in the background and persist
//! under `--data-dir`.

mod auth;
mod child;
mod dashboard;
mod datadir;
mod error;
pub mod job;
mod labels;
mod linger;
mod listen;
pub mod options;
pub mod probe;
mod retention;
mod runs;
mod sessions;
pub mod spec;
mod stall;
pub mod store;
mod throttle;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::routing::{MethodRouter, get, post};

pub use auth::{check_bind, checked_token};
pub use error::ApiError;
pub use listen::serve;
use store::Store;

use rfm_run::settings::Settings;

/// What every handler shares.
pub struct AppState {
    pub data_dir: PathBuf,
    pub store: Store,
    /// The service's settings; each run lays its options over them.
    pub settings: Settings,
    /// Required on every page and API call when set (bearer header or sign-in cookie).
    pub token: Option<String>,
    /// At most `[server] max_running` runs compute at once.
    slots: Arc<tokio::sync::Semaphore>,
    /// `[server] max_memory_mb`, one permit a MiB: a run holds its limit while it lives.
    memory: Arc<tokio::sync::Semaphore>,
    /// The program each run's process runs (`run-job`): this one, unless a test says.
    runner: PathBuf,
    /// Runs queued or computing, each with the flag that stops it (DELETE, time limit).
    active: std::sync::Mutex<std::collections::HashMap<String, Arc<worker::RunStop>>>,
    /// Failed sign-ins per client address.
    attempts: throttle::Attempts,
    /// `[server] trusted_proxies`, whose X-Forwarded-For names the client.
    proxies: throttle::Proxies,
    /// Sign-ins of the dashboard.
    sessions: sessions::Sessions,
    /// Held while the service runs: one service per data folder.
    _lock: datadir::Lock,
}

impl AppState {
    /// Opens (or creates) the data folder and its run database; runs a previous process left
    /// unfinished are marked failed.
    pub fn new(
        data_dir: &Path,
        settings: Settings,
        token: Option<String>,
    ) -> anyhow::Result<AppState> {
        use anyhow::Context;
        let token = auth::checked_token(token)?;
        // Uploads hold customer data: the folder is its owner's only, and so is every file
        // the service creates in it.
        datadir::make_private(data_dir)?;
        let lock = datadir::Lock::take(data_dir)?;
        // Uploads a stopped process left half-received.
        if let Ok(entries) = std::fs::read_dir(data_dir.join("runs")) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".upload-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let store = Store::open(data_dir)
            .with_context(|| format!("{}: cannot open the run database", data_dir.display()))?;
        let slots = Arc::new(tokio::sync::Semaphore::new(
            settings.server.max_running.max(1),
        ));
        let mib = settings
            .server
            .max_memory_mb
            .clamp(1, u64::from(u32::MAX >> 3));
        let memory = Arc::new(tokio::sync::Semaphore::new(mib as usize));
        let runner = std::env::current_exe()
            .context("cannot find this program, which runs each run in a process of its own")?;
        let proxies = throttle::Proxies::parse(&settings.server.trusted_proxies)
            .map_err(anyhow::Error::msg)?;
        let hours = settings.server.session_hours.clamp(1, 24 * 366);
        Ok(AppState {
            data_dir: data_dir.to_path_buf(),
            store,
            memory,
            runner,
            proxies,
            sessions: sessions::Sessions::new(std::time::Duration::from_secs(hours * 3600)),
            attempts: throttle::Attempts::new(settings.server.sign_in_attempts_per_minute),
            settings,
            token,
            slots,
            active: Default::default(),
            _lock: lock,
        })
    }

    /// Runs each run with `program run-job` (tests: the built binary, not the test harness).
    pub fn with_runner(mut self, program: impl Into<PathBuf>) -> AppState {
        self.runner = program.into();
        self
    }

    /// The stop handle of a run about to be queued.
    fn register(&self, id: &str) -> Arc<worker::RunStop> {
        let stop = Arc::new(worker::RunStop::default());
        self.active_runs().insert(id.to_string(), stop.clone());
        stop
    }

    fn unregister(&self, id: &str) {
        self.active_runs().remove(id);
    }

    /// Asks a queued or computing run to stop; false when it is neither.
    fn stop(&self, id: &str) -> bool {
        match self.active_runs().get(id) {
            Some(stop) => {
                stop.request();
                true
            }
            None => false,
        }
    }

    /// Stops every queued or computing run (the service is shutting down).
    pub fn stop_runs(&self) {
        for stop in self.active_runs().values() {
            stop.request();
        }
    }

    fn active_runs(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<worker::RunStop>>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn max_upload_bytes(&self) -> usize {
        (self.settings.server.max_upload_mb as usize).saturating_mul(1 << 20)
    }

    /// The largest body a route takes, checked against a declared Content-Length before
    /// anything is read (the routes' own limits apply while a body is read).
    fn body_limit(&self, method: &axum::http::Method, path: &str) -> usize {
        match (method.as_str(), path) {
            ("POST", "/v1/runs") => self.upload_body_limit(),
            ("POST", "/sign-in") => auth::SIGN_IN_BODY,
            ("POST", "/v1/columns") => dashboard::HEADER_BODY,
            ("POST", p) if p.starts_with("/v1/runs/") && p.ends_with("/campaigns") => {
                runs::CAMPAIGNS_BODY
            }
            _ => SMALL_BODY,
        }
    }

    /// Room for the multipart framing around a file of exactly the upload limit.
    fn upload_body_limit(&self) -> usize {
        self.max_upload_bytes().saturating_add(64 << 10)
    }

    /// Runs that may be queued or running at once.
    fn max_active(&self) -> usize {
        self.settings.server.max_running.max(1) + self.settings.server.max_queued
    }
}

type Shared = Arc<AppState>;

/// The largest body of a request to any other route.
const SMALL_BODY: usize = 64 << 10;

/// One line per request at `-v`: method, path (never the query), status and time.
async fn log_request(
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        "{method} {path} {} {:.1} ms",
        resp.status().as_u16(),
        started.elapsed().as_secs_f64() * 1e3
    );
    resp
}

/// Routes that need the token: the dashboard and the API.
fn protected_routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        ("/", get(dashboard::index)),
        ("/openapi.json", get(dashboard::openapi)),
        ("/v1/config", get(dashboard::config)),
        (
            "/v1/columns",
            post(dashboard::columns).layer(DefaultBodyLimit::max(dashboard::HEADER_BODY)),
        ),
        ("/v1/runs", get(runs::list).post(runs::create)),
        ("/v1/runs/{id}", get(runs::get).delete(runs::delete)),
        (
            "/v1/runs/{id}/campaigns",
            post(runs::campaigns).layer(DefaultBodyLimit::max(runs::CAMPAIGNS_BODY)),
        ),
        ("/v1/runs/{id}/files/{*path}", get(runs::file)),
        ("/v1/compare", get(runs::compare)),
    ]
}

/// Routes open without the token: probes, the dashboard's assets, signing in and out.
fn open_routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        ("/healthz", get(|| async { "ok" })),
        ("/readyz", get(runs::readyz)),
        ("/assets/{name}", get(dashboard::asset)),
        (
            "/sign-in",
            post(auth::sign_in).layer(DefaultBodyLimit::max(auth::SIGN_IN_BODY)),
        ),
        ("/sign-out", post(auth::sign_out)),
    ]
}

/// Every path the router serves, from the lists that build it (for the test that the
/// OpenAPI document describes them all).
pub fn route_paths() -> Vec<&'static str> {
    open_routes()
        .into_iter()
        .chain(protected_routes())
        .map(|(path, _)| path)
        .collect()
}

/// The application.
pub fn app(state: Shared) -> Router {
    let body_limit = state.upload_body_limit();
    let protected = protected_routes()
        .into_iter()
        .fold(Router::new(), |r, (path, route)| r.route(path, route))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    open_routes()
        .into_iter()
        .fold(Router::new(), |r, (path, route)| r.route(path, route))
        .merge(protected)
        .fallback(|| async {
            ApiError::NotFound("no such page or endpoint; see /openapi.json".into())
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::same_origin_only,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::check_request,
        ))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(log_request))
        .layer(middleware::map_response(
            |mut r: axum::response::Response| async move {
                r.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                r.headers_mut()
                    .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                r
            },
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            linger::lingering_close,
        ))
        .with_state(state)
}
