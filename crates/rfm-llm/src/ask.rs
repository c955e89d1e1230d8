//! The validated ask, the one loop every LLM writer uses: send the request, parse and check
//! the answer, ask once more naming each problem, and otherwise give the reason to fall
//! back. What an answer is and how it is checked belong to the caller ([`Check`]).

use std::fmt;

pub use rfm_core::run_folder::{Fallback, FallbackReason};

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

/// Why the call failed, as a fall-back reason.
fn reason_of(e: &LlmError) -> FallbackReason {
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

/// The fall-back for an answer that was refused: `problems` are what was wrong with it.
pub fn invalid(lead: &str, problems: &[Problem]) -> Fallback {
    let violations = codes(problems);
    let texts: Vec<&str> = problems.iter().map(|p| p.text.as_str()).collect();
    Fallback {
        reason: FallbackReason::Invalid,
        message: format!("{lead}: {}", texts.join("; ")),
        violations,
    }
}

/// The fall-back for a call that failed.
fn call_failed(e: &LlmError) -> Fallback {
    Fallback::new(reason_of(e), e.to_string())
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
                asked.answer = Err(call_failed(&e));
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
    asked.answer = Err(invalid("still invalid after one regeneration", &problems));
    Ok(asked)
}
