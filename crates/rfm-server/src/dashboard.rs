//! The dashboard's page and assets, embedded in the binary (no internet needed), the
//! OpenAPI document, and the service's public configuration (never a key).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::labels::choices;
use super::{ApiError, Shared, options};
use rfm_core::ingest::Role;
use rfm_core::options::{K_MAX, K_MIN};
use rfm_core::rfm::Frequency;
use rfm_llm::client::backend_ready;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const OPENAPI: &str = include_str!("assets/openapi.json");

/// Scripts and styles only from this service; images also as data: URLs; no frames.
const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; script-src 'self'; \
    style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn with_type(kind: &'static str, body: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, kind)], body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub async fn index() -> Response {
    let mut r = with_type("text/html; charset=utf-8", INDEX);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    r
}

pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    match name.as_str() {
        "app.js" => Ok(with_type("text/javascript; charset=utf-8", APP_JS)),
        "app.css" => Ok(with_type("text/css; charset=utf-8", APP_CSS)),
        _ => Err(ApiError::NotFound(format!(
            "no asset `{}`",
            name.chars().take(40).collect::<String>()
        ))),
    }
}

pub async fn openapi() -> Response {
    with_type("application/json", OPENAPI)
}

/// Longest header line `POST /v1/columns` takes.
pub const HEADER_BODY: usize = 64 << 10;

/// `POST /v1/columns` with `{"header": "…"}`, a file's first line: the export preset it is
/// recognised as and the column each role would be read from (or why not).
pub async fn columns(
    State(s): State<Shared>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let line = body["header"].as_str().ok_or_else(|| {
        ApiError::BadRequest("send {\"header\": \"the file's first line\"}".into())
    })?;
    let line = line.lines().next().unwrap_or_default();
    let mut opts = rfm_run::pipeline::read_options(&s.settings);
    if let Some(p) = body["preset"].as_str() {
        opts.preset = p.parse().map_err(ApiError::BadRequest)?;
    }
    let (preset, resolved) = rfm_core::ingest::preview(line, &opts);
    let found = match resolved {
        Ok(r) => json!({"columns": r.manifest()}),
        Err(e) => {
            json!({"error": rfm_run::words::render(&e.into(), rfm_run::words::FrontEnd::Service)})
        }
    };
    let mut doc = json!({
        "preset": preset.map(|p| p.name()),
        "label": preset.map(|p| p.spec().label),
    });
    doc.as_object_mut()
        .expect("object")
        .extend(found.as_object().expect("object").clone());
    Ok(Json(doc))
}

/// `GET /v1/config`: defaults, limits and which LLM backends are set up (yes or no only).
pub async fn config(State(s): State<Shared>) -> Json<Value> {
    let st = &s.settings;
    let backends: Vec<Value> = options::BACKENDS
        .into_iter()
        .map(|(name, b, label)| json!({"name": name, "label": label, "ready": backend_ready(&st.llm, b)}))
        .collect();
    let default_llm = options::api_name(st.llm.backend);
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "defaults": {
            "k": st.cluster.k,
            "k_range": [st.cluster.k_min, st.cluster.k_max],
            "frequency": st.rfm.frequency,
            "llm": default_llm,
            "currency": st.output.currency,
        },
        "columns": st.input.columns,
        // The operator's data sources, by name only (never a URL or password).
        "sources": st.sources.keys().collect::<Vec<_>>(),
        // What the form offers, so that the dashboard hard-codes none of it.
        "choices": {
            "k": {"min": K_MIN, "max": K_MAX, "auto_label": "Automatic (best fit)"},
            "frequency": choices::<Frequency>(),
            "columns": Role::ALL.iter().map(|r| json!({"role": r.key(), "label": r.label()})).collect::<Vec<_>>(),
            "presets": ["auto", "none", "uci", "shopify", "woocommerce", "stripe"],
        },
        "llm_backends": backends,
        "options": options::NAMES,
        "limits": {
            "max_upload_mb": st.server.max_upload_mb,
            "max_running": st.server.max_running.max(1),
            "max_queued": st.server.max_queued,
            "run_timeout_secs": st.server.run_timeout_secs,
            "allow_custom_templates": st.server.allow_custom_templates,
            "input": st.limits,
        },
        "token_required": s.token.is_some(),
    }))
}
