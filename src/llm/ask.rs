//! The validated ask, the one loop every LLM writer uses: send the request, parse and check
//! the answer, ask once more naming each problem, and otherwise give the reason to fall
//! back. What an answer is and how it is checked belong to the caller ([`Check`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ChatRequest, Client, LlmError};

/// One thing wrong with an answer: a stable name (`body_too_short`, `ungrounded`, …) for
/// counting, and the line the model reads, led by that name.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub code: &'static str,
    pub text: String,
}

impl Problem {
    pub fn new(code: &'static str, detail: impl fmt::Display) -> Problem {
        Problem {
            code,
            text: format!("{code}: {detail}"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How a caller reads and judges answers.
pub trait Check {
    type Answer;
    /// Parses `text` and checks it; `Err` lists every problem found. `req` is the request
    /// as sent, whose instructions an answer must not echo.
    fn check(&self, text: &str, req: &ChatRequest) -> Result<Self::Answer, Vec<Problem>>;
    /// The message asking for a corrected answer.
    fn regenerate(&self, problems: &[Problem]) -> Result<String, String>;
}

/// Why the rules wrote a piece of copy instead of the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// The prompt templates did not render.
    Prompt,
    /// The model reached the output-token limit (or stopped early for another reason).
    TokenLimit,
    Timeout,
    /// The server could not be reached.
    Unreachable,
    /// The server answered with an HTTP error.
    HttpError,
    /// The model refused, or the provider blocked the answer.
    Refused,
    /// The response was not a readable chat answer.
    Unreadable,
    /// The answer broke the content gate, grounding or the schema, twice.
    Invalid,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Prompt => "prompt",
            FallbackReason::TokenLimit => "token_limit",
            FallbackReason::Timeout => "timeout",
            FallbackReason::Unreachable => "unreachable",
            FallbackReason::HttpError => "http_error",
            FallbackReason::Refused => "refused",
            FallbackReason::Unreadable => "unreadable",
            FallbackReason::Invalid => "invalid",
        }
    }

    fn of(e: &LlmError) -> FallbackReason {
        match e {
            LlmError::Status { .. } => FallbackReason::HttpError,
            LlmError::Timeout(_) => FallbackReason::Timeout,
            LlmError::Connect(_) => FallbackReason::Unreachable,
            LlmError::Refused(_) | LlmError::Blocked(_) => FallbackReason::Refused,
            LlmError::Incomplete { .. } => FallbackReason::TokenLimit,
            LlmError::Malformed(_) | LlmError::ReplayMiss { .. } | LlmError::Record(_) => {
                FallbackReason::Unreadable
            }
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fall-back: its reason, the sentence for people, and for [`FallbackReason::Invalid`]
/// the names of the last answer's problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    pub reason: FallbackReason,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
}

impl Fallback {
    pub fn new(reason: FallbackReason, message: impl Into<String>) -> Fallback {
        Fallback {
            reason,
            message: message.into(),
            violations: Vec::new(),
        }
    }

    /// The answer was refused: `problems` are what was wrong with it.
    pub fn invalid(lead: &str, problems: &[Problem]) -> Fallback {
        let violations = codes(problems);
        let texts: Vec<&str> = problems.iter().map(|p| p.text.as_str()).collect();
        Fallback {
            reason: FallbackReason::Invalid,
            message: format!("{lead}: {}", texts.join("; ")),
            violations,
        }
    }

    fn call(e: &LlmError) -> Fallback {
        Fallback::new(FallbackReason::of(e), e.to_string())
    }
}

/// The names of `problems`, each once, in order.
fn codes(problems: &[Problem]) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for p in problems {
        if !codes.iter().any(|c| c == p.code) {
            codes.push(p.code.to_string());
        }
    }
    codes
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What one ask produced.
pub struct Asked<A> {
    /// The accepted answer, or why there is none.
    pub answer: Result<A, Fallback>,
    /// The names of the problems of every refused answer, each once per answer, in order:
    /// an answer accepted on regeneration leaves its first answer's here.
    pub refused: Vec<String>,
    /// Tokens spent, failed answers included.
    pub tokens: u64,
}

/// Answers in all: the first and one regeneration.
const ATTEMPTS: usize = 2;

/// Asks `client` with `req` (or falls back when the request could not be made), checks
/// each answer with `checker`, and asks once more naming the problems. `Err` only for
/// errors that stop the run (a replay miss, a recording that cannot be written).
pub async fn ask<C: Check>(
    client: &Client,
    req: Result<ChatRequest, String>,
    checker: &C,
) -> Result<Asked<C::Answer>, LlmError> {
    let mut asked = Asked {
        answer: Err(Fallback::new(FallbackReason::Prompt, String::new())),
        refused: Vec::new(),
        tokens: 0,
    };
    let mut req = match req {
        Ok(r) => r,
        Err(e) => {
            asked.answer = Err(Fallback::new(FallbackReason::Prompt, e));
            return Ok(asked);
        }
    };
    let mut problems = Vec::new();
    for attempt in 0..ATTEMPTS {
        let resp = match client.complete(&req).await {
            Ok(r) => r,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                asked.tokens += e.usage().input_tokens + e.usage().output_tokens;
                asked.answer = Err(Fallback::call(&e));
                return Ok(asked);
            }
        };
        asked.tokens += resp.usage.input_tokens + resp.usage.output_tokens;
        match checker.check(&resp.text, &req) {
            Ok(a) => {
                asked.answer = Ok(a);
                return Ok(asked);
            }
            Err(p) => problems = p,
        }
        asked.refused.extend(codes(&problems));
        if attempt + 1 < ATTEMPTS {
            let texts: Vec<&str> = problems.iter().map(|p| p.text.as_str()).collect();
            tracing::info!("asking again: {}", texts.join("; "));
            match checker.regenerate(&problems) {
                Ok(again) => req.ask_again(resp.text, again),
                Err(e) => {
                    asked.answer = Err(Fallback::new(FallbackReason::Prompt, e));
                    return Ok(asked);
                }
            }
        }
    }
    asked.answer = Err(Fallback::invalid(
        "still invalid after one regeneration",
        &problems,
    ));
    Ok(asked)
}
