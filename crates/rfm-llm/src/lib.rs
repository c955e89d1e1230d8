//! LLM backends behind one trait, with provider-neutral requests and responses. Each wire
//! format lives in its own file ([`gemini`], [`openai`]); [`replay`] serves recorded answers;
//! [`client`] adds retries, the on-disk cache, recording and the run's accounting.

pub mod ask;
pub mod client;
pub mod gemini;
pub mod openai;
pub mod replay;
pub mod schema;
pub mod settings;
pub mod store;
pub mod templates;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use client::{Client, ClientOptions, Stats};

/// A boxed future, so that providers can sit behind `dyn Provider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who wrote a message of the conversation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// One request for a JSON answer that follows `schema`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatRequest {
    pub system: String,
    pub messages: Vec<Message>,
    pub schema_name: String,
    pub schema: serde_json::Value,
    pub temperature: f32,
    pub max_tokens: u32,
}

impl ChatRequest {
    /// Continues the conversation: the model's previous answer, then `feedback` (what was
    /// wrong with it), for a regeneration.
    pub fn ask_again(&mut self, previous: String, feedback: String) {
        self.messages.push(Message {
            role: Role::Assistant,
            content: previous,
        });
        self.messages.push(Message {
            role: Role::User,
            content: feedback,
        });
    }
}

/// Tokens a request used.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The model's answer: its text (JSON, to be parsed by the caller) and usage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    pub usage: Usage,
}

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("{provider} answered HTTP {status}: {message}{}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        provider: &'static str,
        status: u16,
        message: String,
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the server: {0}")]
    Connect(String),
    #[error("the answer cannot be read: {0}")]
    Malformed(String),
    #[error("the model refused: {0}")]
    Refused(String),
    #[error("blocked by the provider: {0}")]
    Blocked(String),
    /// The model stopped before the end (token limit, …); the tokens were still spent.
    #[error("the answer stopped early: {reason}")]
    Incomplete { reason: String, usage: Usage },
    #[error(
        "no recorded response for request {key} in {dir}; the prompts or settings changed since it was recorded: re-record with --llm gemini|openai --record {dir}"
    )]
    ReplayMiss { key: String, dir: String },
    #[error("{0}")]
    Record(String),
}

impl LlmError {
    /// Worth another attempt: rate limits, server errors, timeouts, lost connections.
    pub fn retryable(&self) -> bool {
        match self {
            LlmError::Status { status, code, .. } => {
                let quota = code.as_deref() == Some("insufficient_quota");
                (*status == 429 && !quota) || *status >= 500
            }
            LlmError::Timeout(_) | LlmError::Connect(_) => true,
            _ => false,
        }
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Tokens spent on a failed answer.
    pub fn usage(&self) -> Usage {
        match self {
            LlmError::Incomplete { usage, .. } => *usage,
            _ => Usage::default(),
        }
    }

    /// Errors that stop the run instead of falling back to the rules.
    pub fn is_fatal(&self) -> bool {
        matches!(self, LlmError::ReplayMiss { .. } | LlmError::Record(_))
    }
}

/// A chat model that answers in JSON.
pub trait Provider: Send + Sync {
    /// `gemini`, `openai` or `replay`.
    fn name(&self) -> &'static str;
    fn model(&self) -> &str;
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>>;
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The wait an error answer's `Retry-After` header asks for.
pub(crate) fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// The first characters of a body, for error messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// Maps a reqwest transport error.
pub(crate) fn transport_error(e: &reqwest::Error, timeout: Duration) -> LlmError {
    if e.is_timeout() {
        LlmError::Timeout(timeout)
    } else if e.is_decode() || e.is_body() {
        LlmError::Malformed(e.to_string())
    } else {
        // Without the URL: it is known to the user and keeps messages short.
        let mut s = e.to_string();
        if let Some(url) = e.url() {
            s = s.replace(&format!(" for url ({url})"), "");
        }
        let mut source = std::error::Error::source(e);
        while let Some(inner) = source {
            s.push_str(&format!(": {inner}"));
            source = inner.source();
        }
        LlmError::Connect(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn quota_errors_are_not_retried() {
        let e = |status, code: Option<&str>| LlmError::Status {
            provider: "openai",
            status,
            message: String::new(),
            code: code.map(String::from),
            retry_after: None,
        };
        assert!(e(429, None).retryable());
        assert!(e(503, None).retryable());
        assert!(!e(429, Some("insufficient_quota")).retryable());
        for s in [400, 401, 403, 404] {
            assert!(!e(s, None).retryable(), "{s}");
        }
    }
}
