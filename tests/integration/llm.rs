//! The LLM backends at the wire: the real binary against local mock servers (wiremock) for
//! Gemini's REST API and OpenAI-compatible servers, through a base-URL override.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{bin, sample_csv};

pub(crate) const KEY: &str = "sk-test-7f3a9c-NEVER-PRINT-ME";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Api {
    OpenAi,
    Gemini,
}

impl Api {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Api::OpenAi => "/v1/chat/completions",
            Api::Gemini => "/v1beta/models/gemini-2.5-flash:generateContent",
        }
    }

    /// A successful answer carrying `content` as the model's text.
    pub(crate) fn ok(self, content: &str) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(match self {
            Api::OpenAi => json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
            }),
            Api::Gemini => json!({
                "candidates": [{"finishReason": "STOP",
                                "content": {"role": "model", "parts": [{"text": content}]}}],
                "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 50,
                                  "totalTokenCount": 150}
            }),
        })
    }
}

/// The user text of a request (the brief), for either wire format.
pub(crate) fn brief(req: &Request) -> (String, usize) {
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    let turns: Vec<String> = match body.get("messages") {
        Some(m) => m.as_array().unwrap()[1..]
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_string())
            .collect(),
        None => body["contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["parts"][0]["text"].as_str().unwrap().to_string())
            .collect(),
    };
    (turns[0].clone(), turns.len())
}

/// A grounded campaign for the cluster the brief describes, one the content gate passes:
/// named after the rule segment, its rationale citing the brief's customer count.
pub(crate) fn good_answer(brief: &str, offer: Option<&str>) -> String {
    let rule = brief
        .split("fits best is \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("Segment");
    let customers = brief
        .split("- customers: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or("0");
    let pitch = offer
        .map(|o| format!(" Enjoy {o} this week."))
        .unwrap_or_default();
    json!({
        "name": format!("{rule} Revisited"),
        "rationale": format!("{customers} customers with the brief's recency, frequency and spend."),
        "strategy": "Personal recommendations and a timely reminder.",
        "channels": ["email"],
        "email": {
            "subject": "{{first_name}}, picked for you",
            "preheader": "New arrivals you may like",
            "body": format!("Hi {{{{first_name}}}},\n\nWe picked a few new arrivals for you, chosen from what shoppers like you have enjoyed, and we would love to hear what you think when you next visit.{pitch}")
        }
    })
    .to_string()
}

/// Answers every request with a grounded campaign for its cluster; `bad_first` answers the
/// first turn of each conversation with `bad` instead (a regeneration gets the good one
/// unless `bad_always`).
struct Writer {
    api: Api,
    bad: Option<String>,
    bad_always: bool,
}

impl Respond for Writer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let (brief, turns) = brief(req);
        match &self.bad {
            Some(bad) if turns == 1 || self.bad_always => self.api.ok(bad),
            _ => self.api.ok(&good_answer(&brief, None)),
        }
    }
}

/// Answers every request with a grounded campaign named "Champions Revisited" that makes
/// the offer given.
struct Offering(&'static str);

impl Respond for Offering {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let (brief, _) = brief(req);
        let brief = brief.replace(
            brief.split("fits best is \"").nth(1).unwrap_or(""),
            "Champions\"",
        );
        Api::OpenAi.ok(&good_answer(&brief, Some(self.0)))
    }
}

fn writer(api: Api) -> Writer {
    Writer {
        api,
        bad: None,
        bad_always: false,
    }
}

/// One run of `agent` against `server`.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    doc: Value,
    elapsed: Duration,
}

async fn agent(
    server: &MockServer,
    api: Api,
    cache: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = bin();
    let (backend, base) = match api {
        Api::OpenAi => ("openai", format!("{}/v1", server.uri())),
        Api::Gemini => ("gemini", server.uri()),
    };
    cmd.args(["agent", "--input"])
        .arg(sample_csv())
        .args(["--llm", backend, "--base-url", &base, "--format", "json"])
        .args(extra)
        .env(
            if api == Api::OpenAi {
                "OPENAI_API_KEY"
            } else {
                "GEMINI_API_KEY"
            },
            KEY,
        )
        .env("RFM_AGENT__LLM__CACHE_DIR", cache)
        .env("RFM_AGENT__LLM__BACKOFF_BASE_MS", "20")
        .env("RFM_AGENT__LLM__BACKOFF_MAX_MS", "100");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Run {
        ok: out.status.success(),
        doc: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        elapsed: start.elapsed(),
    }
}

async fn mount(server: &MockServer, api: Api, responder: impl Respond + 'static) {
    Mock::given(method("POST"))
        .and(path(api.path()))
        .respond_with(responder)
        .mount(server)
        .await;
}

/// Answers the first `n` requests with `template`, then falls through to later mocks.
async fn mount_first(server: &MockServer, api: Api, n: u64, template: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(api.path()))
        .respond_with(template)
        .up_to_n_times(n)
        .with_priority(1)
        .mount(server)
        .await;
}

fn campaigns(run: &Run) -> &Vec<Value> {
    assert!(run.ok, "agent failed: {}", run.stderr);
    run.doc["campaigns"].as_array().unwrap()
}

fn sources(run: &Run) -> Vec<String> {
    campaigns(run)
        .iter()
        .map(|c| c["source"].as_str().unwrap().to_string())
        .collect()
}

fn reasons(run: &Run) -> Vec<String> {
    campaigns(run)
        .iter()
        .map(|c| c["fallback"]["message"].as_str().unwrap_or("").to_string())
        .collect()
}

fn summary(run: &Run, field: &str) -> u64 {
    run.doc["summary"][field].as_u64().unwrap()
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

fn all_llm(run: &Run) {
    assert_eq!(sources(run), vec!["llm"; 4], "{:?}", reasons(run));
}

fn all_fallback_with(run: &Run, words: &str) {
    assert_eq!(sources(run), vec!["fallback"; 4]);
    for r in reasons(run) {
        assert!(r.contains(words), "reason {r:?} should mention {words:?}");
    }
    // The fall-back is the rule agent's campaign, so the run still has every cluster.
    assert!(
        campaigns(run)
            .iter()
            .all(|c| !c["email"]["body"].as_str().unwrap().is_empty())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_success_sends_a_strict_schema_and_only_aggregates() {
    let server = MockServer::start().await;
    mount(&server, Api::OpenAi, writer(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = agent(
        &server,
        Api::OpenAi,
        dir.path(),
        &["--out", out.to_str().unwrap()],
        &[],
    )
    .await;
    all_llm(&run);
    let names: std::collections::BTreeSet<_> = campaigns(&run)
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "names must be unique: {names:?}");
    assert!(names.contains("Champions Revisited"), "{names:?}");
    for c in campaigns(&run) {
        // Sender and footer come from the settings, not from the model.
        assert_eq!(c["email"]["from"], "Your Shop <hello@example.com>");
        assert!(
            c["email"]["footer"]
                .as_str()
                .unwrap()
                .contains("{{unsubscribe_url}}")
        );
    }
    assert_eq!(summary(&run, "requests"), 4);
    assert_eq!(summary(&run, "tokens"), 600);
    assert_eq!(run.doc["summary"]["backend"], "openai");
    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 4);
    let ids: Vec<String> = crate::common::customers(&out).into_keys().collect();
    assert!(ids.len() > 2000);
    // Each brief carries one cluster's figures; together they cover every cluster.
    let clusters: Value =
        serde_json::from_slice(&std::fs::read(out.join("clusters.json")).unwrap()).unwrap();
    let mut briefed: Vec<u64> = reqs
        .iter()
        .map(|r| {
            let (text, _) = brief(r);
            let size = text
                .split("customers: ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no cluster size in the brief: {text}"));
            assert!(text.contains("median days since last order: "), "{text}");
            size
        })
        .collect();
    briefed.sort();
    assert_eq!(briefed, crate::common::sizes(&clusters));
    for r in &reqs {
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            format!("Bearer {KEY}")
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        constrained(&body["response_format"]["json_schema"]["schema"], true);
        // The token limit fits the schema's longest answer, under llm.max_tokens.
        let limit = body["max_completion_tokens"].as_u64().unwrap();
        assert!((500..1024).contains(&limit), "{limit}");
        assert_eq!(body["messages"][0]["role"], "system");
        // Privacy: no customer id appears anywhere in what was sent.
        let text = String::from_utf8_lossy(&r.body);
        for n in rfm_agent::agent::grounding::numbers(&text) {
            assert!(
                !ids.iter().any(|id| id.parse::<f64>().ok() == Some(n)),
                "customer id {n} was sent to the LLM"
            );
        }
    }
    // campaigns.json holds the same document.
    let written: Value =
        serde_json::from_slice(&std::fs::read(out.join("campaigns.json")).unwrap()).unwrap();
    assert_eq!(written["campaigns"], run.doc["campaigns"]);
    // OpenAI's strict subset on request: no string lengths, the rest kept.
    let fresh = tempfile::tempdir().unwrap();
    let strict = [("RFM_AGENT__LLM__SCHEMA", "openai")];
    all_llm(&agent(&server, Api::OpenAi, fresh.path(), &[], &strict).await);
    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 8);
    for r in &reqs[4..] {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        constrained(&body["response_format"]["json_schema"]["schema"], false);
    }
}

/// The answer schema as sent: channels from `[agent] channels`, at most 3; with
/// `lengths`, the texts' lengths too (a grammar-building server), else none at all.
fn constrained(schema: &Value, lengths: bool) {
    let p = &schema["properties"];
    let channels = &p["channels"];
    assert_eq!(channels["maxItems"], 3, "{schema}");
    assert_eq!(channels["minItems"], 1, "{schema}");
    let allowed = channels["items"]["enum"].as_array().unwrap();
    assert!(allowed.contains(&json!("email")) && allowed.contains(&json!("SMS")));
    assert_eq!(schema["additionalProperties"], false);
    if lengths {
        assert_eq!(p["name"]["maxLength"], 40);
        assert_eq!(p["email"]["properties"]["subject"]["maxLength"], 78);
        assert_eq!(p["email"]["properties"]["body"]["maxLength"], 1000);
        assert_eq!(p["email"]["properties"]["body"]["minLength"], 100);
    } else {
        assert!(!schema.to_string().contains("Length"), "{schema}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gemini_success_puts_the_key_in_a_header_and_asks_for_json() {
    let server = MockServer::start().await;
    mount(&server, Api::Gemini, writer(Api::Gemini)).await;
    let dir = tempfile::tempdir().unwrap();
    let run = agent(&server, Api::Gemini, dir.path(), &[], &[]).await;
    all_llm(&run);
    assert_eq!(run.doc["summary"]["model"], "gemini-2.5-flash");
    for r in requests(&server).await {
        assert_eq!(
            r.headers.get("x-goog-api-key").unwrap().to_str().unwrap(),
            KEY
        );
        assert!(
            !r.url.as_str().contains(KEY),
            "the key must not be in the URL"
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(
            body["systemInstruction"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .contains("JSON")
        );
        assert_eq!(
            body["generationConfig"]["responseMimeType"],
            "application/json"
        );
        assert_eq!(
            body["generationConfig"]["responseJsonSchema"]["type"],
            "object"
        );
        // Gemini's subset: enums and item counts, no string lengths.
        constrained(&body["generationConfig"]["responseJsonSchema"], false);
        // Thinking spends output tokens too: Gemini gets llm.max_tokens whole.
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 1024);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_retried_after_the_servers_wait() {
    for api in [Api::OpenAi, Api::Gemini] {
        let server = MockServer::start().await;
        let limited = match api {
            Api::OpenAi => ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}})),
            Api::Gemini => ResponseTemplate::new(429).set_body_json(json!({"error": {
                "code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]}})),
        };
        mount_first(&server, api, 1, limited).await;
        mount(&server, api, writer(api)).await;
        let dir = tempfile::tempdir().unwrap();
        let run = agent(&server, api, dir.path(), &[], &[]).await;
        all_llm(&run);
        assert_eq!(summary(&run, "retries"), 1);
        assert_eq!(summary(&run, "requests"), 5);
        assert!(
            run.elapsed >= Duration::from_secs(1),
            "the 1 s wait was not honoured"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried() {
    for api in [Api::OpenAi, Api::Gemini] {
        let server = MockServer::start().await;
        mount_first(
            &server,
            api,
            2,
            ResponseTemplate::new(500).set_body_string("upstream hiccup"),
        )
        .await;
        mount(&server, api, writer(api)).await;
        let dir = tempfile::tempdir().unwrap();
        let run = agent(&server, api, dir.path(), &[], &[]).await;
        all_llm(&run);
        assert_eq!(summary(&run, "retries"), 2);
        assert_eq!(requests(&server).await.len(), 6);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_times_out_and_falls_back() {
    for api in [Api::OpenAi, Api::Gemini] {
        let server = MockServer::start().await;
        mount(
            &server,
            api,
            ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("RFM_AGENT__LLM__TIMEOUT_SECS", "0.3"),
            ("RFM_AGENT__LLM__MAX_ATTEMPTS", "2"),
        ];
        let run = agent(&server, api, dir.path(), &[], &env).await;
        all_fallback_with(&run, "no answer within");
        assert_eq!(
            summary(&run, "requests"),
            8,
            "each cluster: first try and one retry"
        );
        assert_eq!(summary(&run, "retries"), 4);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_and_exhausted_quota_are_not_retried() {
    let cases = [
        (
            401,
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
            "HTTP 401",
        ),
        (
            429,
            json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
            "insufficient_quota",
        ),
        (
            404,
            json!({"error": {"message": "The model does not exist", "type": "invalid_request_error", "code": "model_not_found"}}),
            "HTTP 404",
        ),
    ];
    for (status, body, words) in cases {
        let server = MockServer::start().await;
        mount(
            &server,
            Api::OpenAi,
            ResponseTemplate::new(status).set_body_json(body),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let run = agent(&server, Api::OpenAi, dir.path(), &[], &[]).await;
        all_fallback_with(&run, words);
        assert_eq!(summary(&run, "requests"), 4, "{status} must not be retried");
        assert!(!run.stderr.contains(KEY) && !run.stdout.contains(KEY));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn llama_cpp_integer_error_codes_are_read() {
    let server = MockServer::start().await;
    let body = json!({"error": {"code": 400, "message": "the request exceeds the available context size", "type": "exceed_context_size_error"}});
    mount(
        &server,
        Api::OpenAi,
        ResponseTemplate::new(400).set_body_json(body),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = agent(&server, Api::OpenAi, dir.path(), &[], &[]).await;
    all_fallback_with(
        &run,
        "HTTP 400: the request exceeds the available context size",
    );
    assert_eq!(summary(&run, "requests"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_schema_violating_answers_get_one_regeneration_then_fall_back() {
    let cases = [
        (
            "{\"name\": \"Champions\", \"rationale\": ",
            "not JSON that follows the schema",
        ),
        (
            r#"{"name": "X", "rationale": "r", "strategy": "s", "channels": ["email"]}"#,
            "missing field `email`",
        ),
        (
            r#"{"name": "", "rationale": "r", "strategy": "s", "channels": [], "email": {"subject": "s", "preheader": "", "body": "b"}}"#,
            "name is empty",
        ),
    ];
    for (api, (bad, words)) in [Api::OpenAi, Api::Gemini]
        .into_iter()
        .flat_map(|a| cases.map(|c| (a, c)))
    {
        let server = MockServer::start().await;
        let responder = Writer {
            api,
            bad: Some(bad.to_string()),
            bad_always: true,
        };
        mount(&server, api, responder).await;
        let dir = tempfile::tempdir().unwrap();
        let run = agent(&server, api, dir.path(), &[], &[]).await;
        all_fallback_with(&run, words);
        assert!(reasons(&run)[0].contains("after one regeneration"));
        assert_eq!(summary(&run, "requests"), 8);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_and_blocks_fall_back_with_the_reason() {
    let server = MockServer::start().await;
    let refusal = ResponseTemplate::new(200).set_body_json(json!({
        "id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}}]
    }));
    mount(&server, Api::OpenAi, refusal).await;
    let dir = tempfile::tempdir().unwrap();
    let run = agent(&server, Api::OpenAi, dir.path(), &[], &[]).await;
    all_fallback_with(&run, "refused: I can't help with that.");

    for (answer, words) in [
        (
            json!({"candidates": [{"finishReason": "SAFETY", "content": {"parts": []}}]}),
            "finishReason SAFETY",
        ),
        (
            json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
            "prompt blocked: PROHIBITED_CONTENT",
        ),
        (
            json!({"candidates": [{"finishReason": "MAX_TOKENS", "content": {"parts": [{"text": "{\"na"}]}}],
                "usageMetadata": {"promptTokenCount": 300, "candidatesTokenCount": 1024}}),
            "MAX_TOKENS",
        ),
    ] {
        let server = MockServer::start().await;
        mount(
            &server,
            Api::Gemini,
            ResponseTemplate::new(200).set_body_json(answer),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let run = agent(&server, Api::Gemini, dir.path(), &[], &[]).await;
        all_fallback_with(&run, words);
        assert_eq!(summary(&run, "requests"), 4, "not retried: {words}");
        if words == "MAX_TOKENS" {
            // A truncated answer still spent its tokens.
            assert_eq!(summary(&run, "tokens"), 4 * 1324);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grounding_violation_is_named_and_regenerated() {
    for api in [Api::OpenAi, Api::Gemini] {
        let server = MockServer::start().await;
        let invented = good_answer("fits best is \"Champions\"", Some("25 % off"));
        mount(
            &server,
            api,
            Writer {
                api,
                bad: Some(invented),
                bad_always: false,
            },
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let run = agent(&server, api, dir.path(), &[], &[]).await;
        all_llm(&run);
        assert_eq!(summary(&run, "requests"), 8);
        // The second turn names the violation.
        let reqs = requests(&server).await;
        let second = reqs
            .iter()
            .find(|r| brief(r).1 == 3)
            .expect("a regeneration");
        let text = String::from_utf8_lossy(&second.body);
        assert!(
            text.contains("the number 25 is not in the cluster"),
            "{text}"
        );
        assert!(text.contains("not in the approved offers"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_violation_twice_falls_back_and_an_approved_offer_passes() {
    let server = MockServer::start().await;
    // Every answer, first and regenerated, offers 25 % off and calls the segment Champions.
    mount(&server, Api::OpenAi, Offering("25 % off")).await;
    let dir = tempfile::tempdir().unwrap();
    let run = agent(&server, Api::OpenAi, dir.path(), &[], &[]).await;
    all_fallback_with(&run, "still invalid after one regeneration");
    assert!(reasons(&run)[0].contains("the number 25"));

    // The same copy passes once the offer is approved in the settings.
    let cfg = dir.path().join("offers.toml");
    std::fs::write(&cfg, "[agent]\noffers = [\"25 % off\"]\n").unwrap();
    let run = agent(
        &server,
        Api::OpenAi,
        dir.path(),
        &["--config", cfg.to_str().unwrap()],
        &[],
    )
    .await;
    // Every answer is the same "Champions Revisited"; only the first keeps it.
    assert_eq!(
        sources(&run),
        vec!["llm", "fallback", "fallback", "fallback"]
    );
    assert!(reasons(&run)[1].contains("already used by cluster 0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_requests_come_from_the_cache() {
    let server = MockServer::start().await;
    mount(&server, Api::OpenAi, writer(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    let first = agent(&server, Api::OpenAi, dir.path(), &[], &[]).await;
    all_llm(&first);
    let second = agent(&server, Api::OpenAi, dir.path(), &[], &[]).await;
    assert_eq!(second.doc["campaigns"], first.doc["campaigns"]);
    assert_eq!(summary(&second, "requests"), 0);
    assert_eq!(summary(&second, "cache_hits"), 4);
    assert_eq!(requests(&server).await.len(), 4);
    let third = agent(&server, Api::OpenAi, dir.path(), &["--no-cache"], &[]).await;
    assert_eq!(summary(&third, "requests"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn recorded_exchanges_replay_offline_and_a_miss_says_to_re_record() {
    let server = MockServer::start().await;
    mount(&server, Api::Gemini, writer(Api::Gemini)).await;
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    let live = agent(
        &server,
        Api::Gemini,
        dir.path(),
        &["--record", fixtures.to_str().unwrap()],
        &[],
    )
    .await;
    all_llm(&live);
    assert_eq!(std::fs::read_dir(&fixtures).unwrap().count(), 4);
    drop(server);

    let replay = |extra: Vec<String>| {
        let mut cmd = bin();
        cmd.args(["agent", "--input"])
            .arg(sample_csv())
            .args([
                "--llm",
                "replay",
                "--fixtures",
                fixtures.to_str().unwrap(),
                "--format",
                "json",
            ])
            .args(extra);
        cmd.output().unwrap()
    };
    let out = replay(vec![]);
    crate::common::assert_ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["campaigns"], live.doc["campaigns"]);
    assert_eq!(doc["summary"]["backend"], "replay");

    // Another k changes the briefs: the first miss stops the run and says what to do.
    let out = replay(vec!["--k".into(), "3".into()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    crate::common::assert_said_once(&err);
    assert!(err.contains("no recorded response for request"), "{err}");
    assert!(
        err.contains("re-record with --llm gemini|openai --record"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_never_appears_in_logs_outputs_cache_or_fixtures() {
    for api in [Api::OpenAi, Api::Gemini] {
        let server = MockServer::start().await;
        mount_first(
            &server,
            api,
            1,
            ResponseTemplate::new(500).set_body_string("oops"),
        )
        .await;
        mount(&server, api, writer(api)).await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let fixtures = dir.path().join("fixtures");
        let env = [("RUST_LOG", "trace")];
        let args = [
            "--out",
            out.to_str().unwrap(),
            "--record",
            fixtures.to_str().unwrap(),
            "-vv",
        ];
        let run = agent(&server, api, dir.path(), &args, &env).await;
        all_llm(&run);
        assert!(run.stderr.len() > 1000, "trace logging should say a lot");
        assert!(!run.stdout.contains(KEY) && !run.stderr.contains(KEY));
        let mut files = 0;
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(KEY),
                "{} contains the key",
                entry.display()
            );
            files += 1;
        }
        assert!(
            files >= 4 + 4 + 3,
            "cache, fixtures and outputs were all checked ({files})"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_missing_key_is_a_clear_error_before_any_work() {
    let err = crate::common::fails(&["agent", "--llm", "gemini"]);
    assert!(err.contains("GEMINI_API_KEY"), "{err}");
    let err = crate::common::fails(&["agent", "--llm", "openai"]);
    assert!(err.contains("OPENAI_API_KEY"), "{err}");
    let err = crate::common::fails(&["agent", "--llm", "replay"]);
    assert!(err.contains("--fixtures"), "{err}");
}

/// Writes markup into every answer, markup that would run if a page inserted it as HTML.
pub struct Markup {
    /// The name, with `{rule}` standing for the first four letters of the rule-based name.
    pub name: &'static str,
    /// Replaces the subject when given.
    pub subject: Option<&'static str>,
    pub body: &'static str,
    /// The one channel named.
    pub channel: &'static str,
}

impl Respond for Markup {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let (brief, _) = brief(req);
        let mut answer: Value = serde_json::from_str(&good_answer(&brief, None)).unwrap();
        let rule = answer["name"].as_str().unwrap().replace(" Revisited", "");
        answer["name"] = json!(self.name.replace("{rule}", &rule[..4]));
        if let Some(subject) = self.subject {
            answer["email"]["subject"] = json!(subject);
        }
        answer["email"]["body"] = json!(self.body);
        answer["channels"] = json!([self.channel]);
        Api::OpenAi.ok(&answer.to_string())
    }
}

/// Markup from the LLM never reaches an inbox: the content gate refuses it by name and
/// the rules write the campaign. What the reason quotes of the answer (a channel carrying
/// markup) is shown in the report as text.
#[tokio::test(flavor = "multi_thread")]
async fn llm_markup_is_refused_and_quoted_only_as_text() {
    let server = MockServer::start().await;
    let markup = Markup {
        name: "<script>alert('{rule}')</script>",
        subject: None,
        body: "Hi {{first_name}}, <img src=x onerror=alert()> see you.",
        channel: "<img src=x onerror=alert()>",
    };
    mount(&server, Api::OpenAi, markup).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = agent(
        &server,
        Api::OpenAi,
        dir.path(),
        &["--out", out.to_str().unwrap()],
        &[],
    )
    .await;
    all_fallback_with(&run, "still invalid after one regeneration");
    for reason in reasons(&run) {
        for code in [
            "markup: name",
            "markup: email.body",
            "unknown_channel: `<img src=x",
        ] {
            assert!(reason.contains(code), "{code}: {reason}");
        }
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<img src=x"),
        "markup from the LLM reached the page"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert()&gt;"),
        "the reason quotes the channel as text"
    );
}

/// What an adversarial case is: what it is, how it changes a good answer, the violation
/// that must be named.
type Case = (&'static str, fn(&mut Value), &'static str);

/// Adds `text` to the answer's email body.
fn append_to_body(a: &mut Value, text: &str) {
    let b = format!("{} {text}", a["email"]["body"].as_str().unwrap());
    a["email"]["body"] = json!(b);
}

/// The campaign [`good_answer`] writes, changed by a function: one kind of junk.
struct Tampered(fn(&mut Value));

impl Respond for Tampered {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let (brief, _) = brief(req);
        let mut answer: Value = serde_json::from_str(&good_answer(&brief, None)).unwrap();
        (self.0)(&mut answer);
        Api::OpenAi.ok(&answer.to_string())
    }
}

/// Each kind of junk a model writes is refused with its named violation, twice, and the
/// rules write the campaign; the run succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn adversarial_answers_are_refused_by_name_and_the_rules_step_in() {
    const GERMAN: &str = "Hallo {{first_name}},\n\nvielen Dank, dass Sie in diesem Jahr so oft \
        bei uns eingekauft haben. Wir haben einige neue Artikel für Sie ausgewählt und freuen \
        uns sehr auf Ihren nächsten Besuch in unserem Geschäft.";
    let cases: [Case; 12] = [
        (
            "emoji-only fields",
            |a| {
                a["name"] = json!("👍👍👍👍👍");
                a["email"]["subject"] = json!("👍👍👍👍👍👍");
            },
            "name_not_words",
        ),
        (
            "a segment name as the channel",
            |a| a["channels"] = json!(["Need Attention"]),
            "unknown_channel",
        ),
        (
            "a German body",
            |a| a["email"]["body"] = json!(GERMAN),
            "wrong_language",
        ),
        (
            "a 10,000-character body",
            |a| {
                let b = format!(
                    "Hi {{{{first_name}}}},\n{}",
                    "We have something new for you. ".repeat(330)
                );
                a["email"]["body"] = json!(b);
            },
            "body_too_long",
        ),
        (
            "one line repeated",
            |a| {
                let b = format!(
                    "Hi {{{{first_name}}}},\n{}",
                    "Come back and see our new range today.\n".repeat(5)
                );
                a["email"]["body"] = json!(b);
            },
            "repeated_line",
        ),
        (
            "HTML in the body",
            |a| {
                let b = a["email"]["body"]
                    .as_str()
                    .unwrap()
                    .replace("new arrivals", "<b>new arrivals</b>");
                a["email"]["body"] = json!(b);
            },
            "markup",
        ),
        (
            "a URL not in the settings",
            |a| append_to_body(a, "https://win.example.net/prize"),
            "unlisted_url",
        ),
        (
            "As an AI language model",
            |a| append_to_body(a, "As an AI language model, I hope this helps."),
            "prompt_echo",
        ),
        (
            "invented figures",
            |a| append_to_body(a, "87 % of you came back last month."),
            "the number 87 is not in the cluster",
        ),
        (
            "an invented discount",
            |a| append_to_body(a, "Use code SAVE now for a discount."),
            "not in the approved offers",
        ),
        (
            "an empty strategy",
            |a| a["strategy"] = json!(""),
            "empty_field: strategy is empty",
        ),
        (
            "a name that is a sentence",
            |a| a["name"] = json!("These are our very best customers."),
            "name_is_sentence",
        ),
    ];
    for (what, tamper, named) in cases {
        let server = MockServer::start().await;
        mount(&server, Api::OpenAi, Tampered(tamper)).await;
        let dir = tempfile::tempdir().unwrap();
        let run = agent(&server, Api::OpenAi, dir.path(), &[], &[]).await;
        // One regeneration each, then the rules: 8 requests, 4 fall-backs.
        assert_eq!(summary(&run, "requests"), 8, "{what}");
        for r in reasons(&run) {
            assert!(
                r.starts_with("still invalid after one regeneration") && r.contains(named),
                "{what}: {r}"
            );
        }
        assert_eq!(sources(&run), vec!["fallback"; 4], "{what}");
    }
}
