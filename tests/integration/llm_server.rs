//! End to end against a real OpenAI-compatible server: llama.cpp's server with SmolLM2-135M,
//! started by `.ci/run`, which passes its URL in RFM_AGENT_LLM_SERVER.

use serde_json::Value;

use crate::common::{bin, llm_server, sample_csv};

/// Copy the run took from the model passes the content gate again here, field by field
/// (the figures as the rationale quotes them: grounding has its own tests).
fn passes_the_gate(c: &Value) {
    use rfm_agent::agent::{gate, grounding};
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let channels: Vec<String> = c["channels"].as_array().unwrap().iter().map(text).collect();
    let rationale = text(&c["rationale"]);
    let (name, strategy) = (text(&c["name"]), text(&c["strategy"]));
    let e = &c["email"];
    let (subject, preheader, body) = (text(&e["subject"]), text(&e["preheader"]), text(&e["body"]));
    let settings = rfm_agent::settings::AgentSettings::default();
    let rules = gate::Rules {
        channels: &settings.channels,
        taken: &[],
        figures: &grounding::numbers(&rationale),
        language: gate::language(&settings.locale),
        urls: &settings.urls,
        instructions: "",
    };
    let draft = gate::Draft {
        plan: Some(gate::Plan {
            name: &name,
            rationale: &rationale,
            strategy: &strategy,
            channels: &channels,
        }),
        message: gate::Message::Email {
            subject: &subject,
            preheader: &preheader,
            body: &body,
        },
    };
    let found = gate::check(&draft, &rules);
    assert!(
        found.is_empty(),
        "an llm campaign fails the gate: {found:?}: {c}"
    );
}

#[test]
#[ignore = "needs the llama.cpp server (RFM_AGENT_LLM_SERVER); .ci/run provides them"]
fn agent_against_a_real_llama_cpp_server() {
    let url = llm_server();
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["agent", "--input"])
        .arg(sample_csv())
        // Two segments: each answer is up to 1,000 tokens, at tens of tokens a second.
        .args(["--k", "2"])
        .args(["--llm", "openai", "--model", "smollm2", "--base-url"])
        .arg(&url)
        .args(["--format", "json", "--out"])
        .arg(dir.path().join("out"))
        .env("RFM_AGENT__LLM__CACHE_DIR", dir.path().join("cache"))
        // A tiny model on a CPU: time to answer. The token limit is the product's own,
        // fitted to the schema, so answers are whole and the gate judges them.
        .env("RFM_AGENT__LLM__TIMEOUT_SECS", "300")
        .env("RFM_AGENT__LLM__MAX_ATTEMPTS", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let campaigns = doc["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 2);
    for c in campaigns {
        let email = &c["email"];
        for field in ["subject", "body", "from", "footer"] {
            assert!(!email[field].as_str().unwrap().trim().is_empty(), "{c}");
        }
        assert!(!c["name"].as_str().unwrap().is_empty());
        match c["source"].as_str().unwrap() {
            "llm" => {
                assert!(c.get("fallback").is_none());
                passes_the_gate(c);
            }
            "fallback" => {
                // The model answered: the fall-back is about its answer, not the connection;
                // a refused answer names each problem.
                let f = &c["fallback"];
                let reason = f["reason"].as_str().unwrap();
                assert!(["invalid", "token_limit"].contains(&reason), "{f}");
                let named = f["violations"].as_array().map_or(0, Vec::len);
                assert_eq!(reason == "invalid", named > 0, "{f}");
                let message = f["message"].as_str().unwrap();
                for v in f["violations"].as_array().into_iter().flatten() {
                    assert!(message.contains(v.as_str().unwrap()), "{f}");
                }
            }
            other => panic!("unexpected source {other}"),
        }
    }
    let summary = &doc["summary"];
    assert_eq!(summary["backend"], "openai");
    assert!(summary["requests"].as_u64().unwrap() >= 2, "{summary}");
    // The server's own usage figures arrive, answers complete or not.
    assert!(summary["output_tokens"].as_u64().unwrap() > 0, "{summary}");
    eprintln!("llama.cpp run: {summary}");
}
