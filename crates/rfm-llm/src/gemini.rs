//! Gemini's REST wire format: `POST {base}/v1beta/models/{model}:generateContent` with the key
//! in the `x-goog-api-key` header (never in the URL), a system instruction and a JSON schema
//! for the answer.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::schema::Dialect;
use super::{
    BoxFuture, ChatRequest, ChatResponse, LlmError, Provider, Role, Usage, excerpt,
    parse_retry_after, retry_after_header, transport_error,
};

pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
pub const DEFAULT_MODEL: &str = "gemini-2.5-flash";

pub struct Gemini {
    http: reqwest::Client,
    base_url: String,
    model: String,
    key: String,
    timeout: Duration,
    dialect: Dialect,
}

impl Gemini {
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        model: &str,
        key: &str,
        timeout: Duration,
    ) -> Gemini {
        Gemini {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            key: key.to_string(),
            timeout,
            dialect: Dialect::Gemini,
        }
    }

    /// The schema keywords sent (`llm.schema`; Gemini's own subset unless told otherwise).
    pub fn with_dialect(mut self, dialect: Dialect) -> Gemini {
        if dialect != Dialect::Auto {
            self.dialect = dialect;
        }
        self
    }

    /// The request body.
    pub fn body(&self, req: &ChatRequest) -> serde_json::Value {
        let contents: Vec<_> = req
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "model",
                };
                json!({"role": role, "parts": [{"text": m.content}]})
            })
            .collect();
        json!({
            "systemInstruction": {"parts": [{"text": req.system}]},
            "contents": contents,
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseJsonSchema": self.dialect.fit(&req.schema),
                "temperature": req.temperature,
                "maxOutputTokens": self.dialect.token_limit(&req.schema, req.max_tokens),
            }
        })
    }

    async fn call(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let url = format!(
            "{}/v1beta/models/{}:generateContent",
            self.base_url, self.model
        );
        let resp = self
            .http
            .post(&url)
            .header("x-goog-api-key", &self.key)
            .json(&self.body(req))
            .send()
            .await
            .map_err(|e| transport_error(&e, self.timeout))?;
        let status = resp.status();
        let header_wait = retry_after_header(resp.headers());
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&e, self.timeout))?;
        if !status.is_success() {
            return Err(error_from(status.as_u16(), &bytes, header_wait));
        }
        parse_answer(&bytes)
    }
}

impl Provider for Gemini {
    fn name(&self) -> &'static str {
        "gemini"
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn complete<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(self.call(req))
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

/// An error answer: `{"error": {"code", "message", "status", "details": [RetryInfo…]}}`.
fn error_from(status: u16, bytes: &[u8], header_wait: Option<Duration>) -> LlmError {
    let (message, code, info_wait) = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(b) => {
            let wait = b.error.details.iter().find_map(|d| {
                let is_retry_info = d
                    .get("@type")
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"));
                let delay = d.get("retryDelay")?.as_str()?;
                is_retry_info
                    .then(|| parse_retry_after(delay.trim_end_matches('s')))
                    .flatten()
            });
            (b.error.message, b.error.status, wait)
        }
        Err(_) => (excerpt(bytes), None, None),
    };
    LlmError::Status {
        provider: "gemini",
        status,
        message,
        code,
        retry_after: header_wait.or(info_wait),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<UsageMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    thoughts_token_count: u64,
}

fn parse_answer(bytes: &[u8]) -> Result<ChatResponse, LlmError> {
    let answer: Answer = serde_json::from_slice(bytes).map_err(|e| {
        LlmError::Malformed(format!(
            "not a generateContent response ({e}): {}",
            excerpt(bytes)
        ))
    })?;
    if let Some(reason) = answer.prompt_feedback.and_then(|f| f.block_reason) {
        return Err(LlmError::Blocked(format!("prompt blocked: {reason}")));
    }
    let u = answer.usage_metadata.unwrap_or_default();
    let usage = Usage {
        input_tokens: u.prompt_token_count,
        output_tokens: u.candidates_token_count + u.thoughts_token_count,
    };
    let candidate = answer
        .candidates
        .into_iter()
        .next()
        .ok_or_else(|| LlmError::Malformed("the response has no candidates".into()))?;
    match candidate.finish_reason.as_deref() {
        None | Some("STOP") => {}
        Some("MAX_TOKENS") => {
            return Err(LlmError::Incomplete {
                reason: "MAX_TOKENS: the model reached the output-token limit (llm.max_tokens)"
                    .into(),
                usage,
            });
        }
        Some(r @ ("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII")) => {
            return Err(LlmError::Blocked(format!("finishReason {r}")));
        }
        Some(other) => {
            return Err(LlmError::Incomplete {
                reason: format!("finishReason {other}"),
                usage,
            });
        }
    }
    let text: String = candidate
        .content
        .map(|c| c.parts)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !p.thought)
        .filter_map(|p| p.text)
        .collect();
    if text.trim().is_empty() {
        return Err(LlmError::Malformed("the answer has no text".into()));
    }
    Ok(ChatResponse { text, usage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thoughts_are_skipped_and_parts_joined() {
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"thinking","thought":true},{"text":"{\"a\":"},{"text":"1}"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"thoughtsTokenCount":7}}"#;
        let r = parse_answer(body).unwrap();
        assert_eq!(r.text, r#"{"a":1}"#);
        assert_eq!(r.usage.output_tokens, 12);
    }

    #[test]
    fn retry_info_gives_the_wait() {
        let body = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}"#;
        let e = error_from(429, body, None);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(17)));
        assert!(e.retryable());
    }
}
