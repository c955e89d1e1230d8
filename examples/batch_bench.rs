//! Benchmark helper for `batch`: 1,008 items against a local mock that answers at once, at
//! concurrency 16, against the same items written offline (rules) in the same run. Prints
//! items per second for both and the orchestration overhead per item (HTTP round trip,
//! JSON, checks, JSONL write) as JSON. Usage: batch_bench BIN [--runs N] [--concurrency C]

use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

struct Instant200;

impl Respond for Instant200 {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let copy = match body["response_format"]["json_schema"]["name"].as_str() {
            Some("sms_copy") => {
                json!({"text": "{{first_name}}, new picks for you. Reply STOP to opt out"})
            }
            Some("push_copy") => json!({"title": "New picks for you", "body": "See what's new."}),
            _ => {
                json!({"subject": "{{first_name}}, picked for you", "preheader": "New in", "body": "Hi {{first_name}}, new arrivals."})
            }
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": copy.to_string()}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        }))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .ok_or("usage: batch_bench BIN [--runs N] [--concurrency C]")?
        .clone();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (runs, concurrency) = (flag("--runs", 3), flag("--concurrency", 16));
    let dir = tempfile::tempdir()?;
    let run_dir = dir.path().join("run");
    let st = Command::new(&bin)
        .arg("agent")
        .arg("--out")
        .arg(&run_dir)
        .output()?;
    assert!(st.status.success(), "agent failed");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Instant200)
        .mount(&server)
        .await;
    // 4 segments x 3 channels x 3 locales x 28 variants = 1,008 items.
    let common = [
        "--channels",
        "email,sms,push",
        "--locales",
        "en,de,fr",
        "--variants",
        "28",
    ];
    let items = 4 * 3 * 3 * 28;
    let base = format!("{}/v1", server.uri());
    let (mut llm, mut rules) = (Vec::new(), Vec::new());
    for r in 0..runs {
        for mode in ["rules", "llm"] {
            let out = dir.path().join(format!("{mode}-{r}.jsonl"));
            let mut cmd = Command::new(&bin);
            cmd.arg("batch")
                .arg("--run")
                .arg(&run_dir)
                .arg("--out")
                .arg(&out)
                .args(common);
            if mode == "llm" {
                cmd.args([
                    "--llm",
                    "openai",
                    "--base-url",
                    &base,
                    "--no-cache",
                    "--concurrency",
                ])
                .arg(concurrency.to_string())
                .env("OPENAI_API_KEY", "sk-bench");
            }
            let start = Instant::now();
            let st = tokio::task::spawn_blocking(move || cmd.output()).await??;
            let secs = start.elapsed().as_secs_f64();
            assert!(
                st.status.success(),
                "{mode}: {}",
                String::from_utf8_lossy(&st.stderr)
            );
            let n = std::fs::read_to_string(&out)?.lines().count();
            assert_eq!(n, items, "{mode}: every item written");
            if mode == "llm" {
                llm.push(secs)
            } else {
                rules.push(secs)
            }
        }
    }
    let (t_llm, t_rules) = (median(llm), median(rules));
    println!(
        "{}",
        json!({
            "items": items,
            "concurrency": concurrency,
            "runs": runs,
            "llm_seconds": t_llm,
            "rules_seconds": t_rules,
            "llm_items_per_second": items as f64 / t_llm,
            "rules_items_per_second": items as f64 / t_rules,
            "overhead_per_item_ms": (t_llm - t_rules) * 1000.0 / items as f64,
        })
    );
    Ok(())
}
