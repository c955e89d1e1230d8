//! OpenAI-compatible chat completions through `async-openai` (OpenAI, Ollama, vLLM, llama.cpp's
//! server, OpenRouter, Gemini's OpenAI endpoint), with a strict JSON-schema response format.
//! The client's own retry layer is replaced by a plain transport that notes `Retry-After`, so
//! that [`super::client`] owns every retry and counts it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, FinishReason, ResponseFormat, ResponseFormatJsonSchema,
};
use serde::Deserialize;

use super::schema::Dialect;
use super::{
    BoxFuture, ChatRequest, ChatResponse, LlmError, Provider, Role, Usage, excerpt,
    retry_after_header, transport_error,
};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

pub struct OpenAi {
    http: reqwest::Client,
    config: OpenAIConfig,
    model: String,
    timeout: Duration,
    dialect: Dialect,
}

impl OpenAi {
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        model: &str,
        key: &str,
        timeout: Duration,
    ) -> OpenAi {
        OpenAi {
            http,
            config: OpenAIConfig::new()
                .with_api_base(base_url.trim_end_matches('/'))
                .with_api_key(key),
            model: model.to_string(),
            timeout,
            dialect: if base_url.contains("api.openai.com") {
                Dialect::Openai
            } else {
                Dialect::Full
            },
        }
    }

    /// The schema keywords sent (`llm.schema`): by default OpenAI's strict subset for the
    /// public API and the whole schema for other servers, which turn it into a grammar.
    pub fn with_dialect(mut self, dialect: Dialect) -> OpenAi {
        if dialect != Dialect::Auto {
            self.dialect = dialect;
        }
        self
    }

    /// The request in async-openai's types.
    pub fn request(&self, req: &ChatRequest) -> CreateChatCompletionRequest {
        let mut messages: Vec<ChatCompletionRequestMessage> =
            vec![ChatCompletionRequestSystemMessage::from(req.system.as_str()).into()];
        for m in &req.messages {
            messages.push(match m.role {
                Role::User => ChatCompletionRequestUserMessage::from(m.content.as_str()).into(),
                Role::Assistant => ChatCompletionRequestAssistantMessage {
                    content: Some(m.content.as_str().into()),
                    ..Default::default()
                }
                .into(),
            });
        }
        CreateChatCompletionRequest {
            model: self.model.clone(),
            messages,
            response_format: Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: None,
                    name: req.schema_name.clone(),
                    schema: self.dialect.fit(&req.schema),
                    strict: Some(true),
                },
            }),
            temperature: Some(req.temperature),
            max_completion_tokens: Some(self.dialect.token_limit(&req.schema, req.max_tokens)),
            ..Default::default()
        }
    }

    async fn call(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        // A plain transport per call: it records the Retry-After of this call's error answer.
        let retry_after: Arc<Mutex<Option<Duration>>> = Arc::default();
        let transport = {
            let http = self.http.clone();
            let slot = retry_after.clone();
            tower::service_fn(move |factory: HttpRequestFactory| {
                let http = http.clone();
                let slot = slot.clone();
                async move {
                    let request = factory.build().await?;
                    let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                    if !response.status().is_success() {
                        *slot.lock().unwrap() = retry_after_header(response.headers());
                    }
                    Ok::<_, OpenAIError>(response)
                }
            })
        };
        let client = async_openai::Client::build(self.http.clone(), self.config.clone())
            .with_http_service(transport);
        let answer = client.chat().create(self.request(req)).await;
        let wait = *retry_after.lock().unwrap();
        let answer = answer.map_err(|e| self.map_error(e, wait))?;
        let usage = answer
            .usage
            .as_ref()
            .map(|u| Usage {
                input_tokens: u.prompt_tokens.into(),
                output_tokens: u.completion_tokens.into(),
            })
            .unwrap_or_default();
        let choice = answer
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::Malformed("the response has no choices".into()))?;
        if let Some(refusal) = choice.message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(LlmError::Refused(refusal));
        }
        match choice.finish_reason {
            Some(FinishReason::Length) => {
                return Err(LlmError::Incomplete {
                    reason: "finish_reason length: the model reached the output-token limit (llm.max_tokens)"
                        .into(),
                    usage,
                });
            }
            Some(FinishReason::ContentFilter) => {
                return Err(LlmError::Blocked("finish_reason content_filter".into()));
            }
            _ => {}
        }
        let text = choice
            .message
            .content
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| LlmError::Malformed("the answer has no content".into()))?;
        Ok(ChatResponse { text, usage })
    }

    fn map_error(&self, e: OpenAIError, retry_after: Option<Duration>) -> LlmError {
        match e {
            OpenAIError::ApiError(r) => {
                let status = r.status_code.as_u16();
                let mut message = r.api_error.message;
                if status == 404 {
                    message.push_str(
                        " (check --model, and that --base-url ends where /chat/completions starts, usually /v1)",
                    );
                }
                LlmError::Status {
                    provider: "openai",
                    status,
                    message,
                    code: r.api_error.code.or(r.api_error.r#type),
                    retry_after,
                }
            }
            OpenAIError::Reqwest(e) => transport_error(&e, self.timeout),
            OpenAIError::JSONDeserialize(err, body) => {
                // llama.cpp's error bodies carry an integer `code`, which async-openai cannot
                // read as its error type; read them here.
                match serde_json::from_str::<IntCodeError>(&body) {
                    Ok(b) => LlmError::Status {
                        provider: "openai",
                        status: b.error.code,
                        message: b.error.message,
                        code: b.error.r#type,
                        retry_after,
                    },
                    Err(_) => LlmError::Malformed(format!(
                        "not a chat completion ({err}): {}",
                        excerpt(body.as_bytes())
                    )),
                }
            }
            other => LlmError::Malformed(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct IntCodeError {
    error: IntCodeDetail,
}

#[derive(Deserialize)]
struct IntCodeDetail {
    code: u16,
    #[serde(default)]
    message: String,
    r#type: Option<String>,
}

impl Provider for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
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
