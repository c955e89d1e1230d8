//! Every error the service returns, mapped to a status and a JSON body in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "sign in first: send `Authorization: Bearer TOKEN`, or sign in on the dashboard's page"
    )]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the service is busy: {running} runs are computing and {queued} are waiting, the most it \
         holds; try again when one has finished"
    )]
    Busy { running: usize, queued: usize },
    #[error("the upload is larger than the limit of {0} MB (setting [server] max_upload_mb)")]
    TooLarge(u64),
    /// The reference of the log line that has the details (never the details themselves: a
    /// panic's or a library's words are not for clients).
    #[error("internal error (reference {0}); the service's log has the details")]
    Internal(String),
    #[error(
        "too many failed sign-ins from this address; try again in {0} s (setting [server] sign_in_attempts_per_minute)"
    )]
    TooManyAttempts(u64),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        let incident = incident();
        tracing::error!(incident = %incident, "{e}");
        ApiError::Internal(incident)
    }
}

/// A short random reference that ties what a client is told to the log line with details.
pub fn incident() -> String {
    use rand::Rng;
    format!("{:08x}", rand::thread_rng().r#gen::<u32>())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = json_error(self.status(), &self.to_string());
        let wait = match self {
            ApiError::Busy { .. } => Some(10),
            ApiError::TooManyAttempts(s) => Some(s),
            _ => None,
        };
        if let Some(wait) = wait {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(wait));
        }
        resp
    }
}

/// `{"error": message}` with `status`; the message is cut to about 2 KB.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    let message = rfm_core::bounded::message(message);
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// Error answers that are not JSON yet (axum's own rejections: malformed multipart or
/// JSON, wrong media type, unknown method, body over the limit) become
/// `{"error": their text}`, so that every error the API gives has one shape.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let kind = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if status.as_u16() < 400
        || kind.starts_with("application/json")
        || kind.starts_with("text/html")
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
        t => t.to_string(),
    };
    let mut out = json_error(status, &message);
    for name in [axum::http::header::RETRY_AFTER, axum::http::header::ALLOW] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(format!("run database: {e}"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::internal(format!("file system: {e}"))
    }
}
