//! The client the agent talks to: one provider plus bounded retries with backoff, the
//! on-disk cache, recording, a limit on requests in flight, and counts for the run summary.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;

use super::settings::{Backend, LlmSettings};
use super::store::{Exchange, Store, default_cache_dir, key};
use super::{ChatRequest, ChatResponse, LlmError, Provider, gemini, openai, replay};

/// How requests are retried, cached and recorded.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub max_retry_after: Duration,
    pub concurrency: usize,
    /// Cache of answers; its keys also include `cache_salt` (the base URL).
    pub cache: Option<Store>,
    pub cache_salt: String,
    pub record: Option<Store>,
}

/// What the client did, for the run summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub cache_hits: AtomicU64,
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct Counts {
    pub requests: u64,
    pub retries: u64,
    pub cache_hits: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

pub struct Client {
    provider: Box<dyn Provider>,
    options: ClientOptions,
    stats: Stats,
    slots: tokio::sync::Semaphore,
    /// After a rate limit, no request leaves before this instant: one 429 slows every
    /// worker, not just the one that got it.
    paused_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// Request-rate limit: the earliest start of the next request, and the spacing.
    next_start: tokio::sync::Mutex<tokio::time::Instant>,
    spacing: Option<Duration>,
}

/// Why no client could be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "--llm {backend} needs an API key: set {var} in the environment (or llm.{setting} in the settings)"
    )]
    MissingKey {
        backend: &'static str,
        var: &'static str,
        setting: &'static str,
    },
    #[error("--llm replay needs --fixtures DIR (recorded earlier with --record DIR)")]
    NoFixtures,
    #[error("--record needs a live backend (--llm gemini or --llm openai)")]
    RecordWithoutBackend,
    #[error("{0}")]
    Replay(String),
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

fn key_from(var: &str, configured: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .filter(|k| !k.trim().is_empty())
        .or_else(|| (!configured.trim().is_empty()).then(|| configured.to_string()))
}

/// Whether `backend` has what it needs (a key, or a base URL for a local server), without
/// saying what the key is.
pub fn backend_ready(s: &LlmSettings, backend: Backend) -> bool {
    let gemini = key_from("GEMINI_API_KEY", &s.gemini_api_key.0).is_some();
    let openai =
        key_from("OPENAI_API_KEY", &s.openai_api_key.0).is_some() || !s.base_url.is_empty();
    match backend {
        Backend::Off | Backend::Auto => true,
        Backend::Gemini => gemini,
        Backend::Openai => openai,
        Backend::Replay => false,
    }
}

impl Client {
    pub fn new(provider: Box<dyn Provider>, options: ClientOptions) -> Client {
        let slots = tokio::sync::Semaphore::new(options.concurrency.max(1));
        Client {
            provider,
            options,
            stats: Stats::default(),
            slots,
            paused_until: std::sync::Mutex::new(None),
            next_start: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            spacing: None,
        }
    }

    /// At most `per_second` requests start per second (shared by every worker).
    pub fn with_rate_limit(mut self, per_second: f64) -> Client {
        if per_second.is_finite() && per_second > 0.0 {
            self.spacing = Some(Duration::from_secs_f64(1.0 / per_second));
        }
        self
    }

    /// Waits for a shared pause and for this request's turn under the rate limit; a pause
    /// that starts while waiting for the turn is waited out too.
    async fn wait_turn(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap();
            if let Some(t) = until.filter(|t| *t > tokio::time::Instant::now()) {
                tokio::time::sleep_until(t).await;
                continue;
            }
            let Some(spacing) = self.spacing else { return };
            let start = {
                let mut next = self.next_start.lock().await;
                let start = (*next).max(tokio::time::Instant::now());
                *next = start + spacing;
                start
            };
            tokio::time::sleep_until(start).await;
            let until = *self.paused_until.lock().unwrap();
            if until.is_none_or(|t| t <= tokio::time::Instant::now()) {
                return;
            }
        }
    }

    /// Pauses every request for `wait` (a rate limit was hit).
    fn pause_all(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        let mut p = self.paused_until.lock().unwrap();
        if p.is_none_or(|t| t < until) {
            *p = Some(until);
        }
    }

    /// The client the settings ask for, or `None` for the rule-only agent.
    pub fn from_settings(
        s: &LlmSettings,
        fixtures: Option<&Path>,
        record: Option<&Path>,
    ) -> Result<Option<Client>, SetupError> {
        let gemini_key = key_from("GEMINI_API_KEY", &s.gemini_api_key.0);
        let openai_key = key_from("OPENAI_API_KEY", &s.openai_api_key.0);
        let backend = match s.backend {
            Backend::Auto if gemini_key.is_some() => Backend::Gemini,
            Backend::Auto if openai_key.is_some() => Backend::Openai,
            Backend::Auto => Backend::Off,
            b => b,
        };
        if record.is_some() && !matches!(backend, Backend::Gemini | Backend::Openai) {
            return Err(SetupError::RecordWithoutBackend);
        }
        let provider: Box<dyn Provider> = match backend {
            Backend::Off | Backend::Auto => return Ok(None),
            Backend::Replay => {
                let dir = fixtures.ok_or(SetupError::NoFixtures)?;
                Box::new(replay::Replay::open(dir, &s.model).map_err(SetupError::Replay)?)
            }
            Backend::Gemini => gemini_provider(s, gemini_key)?,
            Backend::Openai => openai_provider(s, openai_key)?,
        };
        let live = !matches!(backend, Backend::Replay);
        let cache = (live && s.cache).then(|| {
            Store::new(if s.cache_dir.is_empty() {
                default_cache_dir()
            } else {
                s.cache_dir.clone().into()
            })
        });
        Ok(Some(Client::new(
            provider,
            ClientOptions {
                max_attempts: s.max_attempts.max(1),
                backoff_base: Duration::from_millis(s.backoff_base_ms),
                backoff_max: Duration::from_millis(s.backoff_max_ms),
                max_retry_after: Duration::from_secs_f64(s.max_retry_after_secs.max(0.0)),
                concurrency: s.concurrency,
                cache,
                cache_salt: s.base_url.clone(),
                record: record.map(Store::new),
            },
        )))
    }

    pub fn backend(&self) -> &'static str {
        self.provider.name()
    }

    pub fn model(&self) -> &str {
        self.provider.model()
    }

    pub fn counts(&self) -> Counts {
        Counts {
            requests: self.stats.requests.load(Relaxed),
            retries: self.stats.retries.load(Relaxed),
            cache_hits: self.stats.cache_hits.load(Relaxed),
            input_tokens: self.stats.input_tokens.load(Relaxed),
            output_tokens: self.stats.output_tokens.load(Relaxed),
        }
    }

    /// The wait before retry number `retry` (0-based): the server's Retry-After when given,
    /// else capped exponential backoff with jitter (half fixed, half random).
    pub fn backoff(&self, retry: u32, asked: Option<Duration>) -> Duration {
        if let Some(wait) = asked {
            return wait;
        }
        let o = &self.options;
        let full = o
            .backoff_base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(o.backoff_max);
        full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    /// Sends one request, with retries; answers from the cache when it can.
    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let key = key(self.provider.name(), self.provider.model(), req);
        let cache_key = super::store::content_key(&ChatRequest {
            system: format!("{}\n{}\n{key}", self.options.cache_salt, req.system),
            ..req.clone()
        });
        if let Some(hit) = self.options.cache.as_ref().and_then(|c| c.get(&cache_key)) {
            self.stats.cache_hits.fetch_add(1, Relaxed);
            self.record(&key, req, &hit.response)?;
            return Ok(hit.response);
        }
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("semaphore is never closed");
        let mut retry = 0;
        loop {
            self.wait_turn().await;
            self.stats.requests.fetch_add(1, Relaxed);
            match self.provider.complete(req).await {
                Ok(resp) => {
                    self.count_tokens(resp.usage);
                    if let Some(cache) = &self.options.cache {
                        let entry = self.exchange(&cache_key, req, &resp);
                        if let Err(e) = cache.put(&entry) {
                            tracing::warn!(
                                "cannot write the LLM cache in {}: {e}",
                                cache.dir().display()
                            );
                        }
                    }
                    self.record(&key, req, &resp)?;
                    return Ok(resp);
                }
                Err(e) if e.retryable() && retry + 1 < self.options.max_attempts => {
                    self.count_tokens(e.usage());
                    let asked = e.retry_after();
                    if asked.is_some_and(|w| w > self.options.max_retry_after) {
                        tracing::warn!(
                            "{}: the server asks to wait {:?}, longer than llm.max_retry_after_secs; giving up",
                            self.provider.name(),
                            asked.unwrap()
                        );
                        return Err(e);
                    }
                    let wait = self.backoff(retry, asked);
                    tracing::info!(
                        "{}: {e}; retry {} of {} in {wait:.1?}",
                        self.provider.name(),
                        retry + 1,
                        self.options.max_attempts - 1
                    );
                    self.stats.retries.fetch_add(1, Relaxed);
                    retry += 1;
                    if matches!(e, LlmError::Status { status: 429, .. }) {
                        self.pause_all(wait);
                    }
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    self.count_tokens(e.usage());
                    return Err(e);
                }
            }
        }
    }

    fn count_tokens(&self, usage: super::Usage) {
        self.stats
            .input_tokens
            .fetch_add(usage.input_tokens, Relaxed);
        self.stats
            .output_tokens
            .fetch_add(usage.output_tokens, Relaxed);
    }

    fn exchange(&self, key: &str, req: &ChatRequest, resp: &ChatResponse) -> Exchange {
        Exchange {
            key: key.to_string(),
            provider: self.provider.name().to_string(),
            model: self.provider.model().to_string(),
            request: req.clone(),
            response: resp.clone(),
        }
    }

    /// Saves the exchange under `--record DIR`; a failure stops the run, since the
    /// fixtures would be incomplete.
    fn record(&self, key: &str, req: &ChatRequest, resp: &ChatResponse) -> Result<(), LlmError> {
        match &self.options.record {
            Some(store) => store.put(&self.exchange(key, req, resp)).map_err(|e| {
                LlmError::Record(format!(
                    "{}: cannot record the response: {e}",
                    store.dir().display()
                ))
            }),
            None => Ok(()),
        }
    }
}

/// The request timeout of the settings.
fn timeout_of(s: &LlmSettings) -> Duration {
    Duration::from_secs_f64(s.timeout_secs.max(0.001))
}

/// The HTTP client every provider uses: request and connect timeouts, our user agent.
fn http(s: &LlmSettings) -> Result<reqwest::Client, SetupError> {
    let timeout = timeout_of(s);
    rfm_core::tls::install();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("rfm-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SetupError::Http(e.to_string()))
}

/// `v`, or `default` when it is empty.
fn or(v: &str, default: &str) -> String {
    if v.is_empty() { default } else { v }.to_string()
}

fn gemini_provider(s: &LlmSettings, key: Option<String>) -> Result<Box<dyn Provider>, SetupError> {
    let key = key.ok_or(SetupError::MissingKey {
        backend: "gemini",
        var: "GEMINI_API_KEY",
        setting: "gemini_api_key",
    })?;
    Ok(Box::new(
        gemini::Gemini::new(
            http(s)?,
            &or(&s.base_url, gemini::DEFAULT_BASE_URL),
            &or(&s.model, gemini::DEFAULT_MODEL),
            &key,
            timeout_of(s),
        )
        .with_dialect(s.schema),
    ))
}

fn openai_provider(s: &LlmSettings, key: Option<String>) -> Result<Box<dyn Provider>, SetupError> {
    // Local servers (llama.cpp, Ollama, vLLM) need no key; the public API does.
    let key = match key {
        Some(k) => k,
        None if !s.base_url.is_empty() => String::new(),
        None => {
            return Err(SetupError::MissingKey {
                backend: "openai",
                var: "OPENAI_API_KEY",
                setting: "openai_api_key",
            });
        }
    };
    Ok(Box::new(
        openai::OpenAi::new(
            http(s)?,
            &or(&s.base_url, openai::DEFAULT_BASE_URL),
            &or(&s.model, openai::DEFAULT_MODEL),
            &key,
            timeout_of(s),
        )
        .with_dialect(s.schema),
    ))
}
