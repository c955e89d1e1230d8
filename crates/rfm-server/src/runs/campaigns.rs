//! `POST /v1/runs/{id}/campaigns`: the campaigns written again, with other templates or another LLM.

use super::*;

/// Largest campaigns-rerun request: two template files of at most 256 KB each.
pub const CAMPAIGNS_BODY: usize = 1 << 20;

/// A campaigns rerun's fields: `llm` into the options, the templates' texts returned.
pub(super) fn rerun_fields(
    body: &Map<String, Value>,
    opts: &mut Map<String, Value>,
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let mut prompts: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in body {
        match name.as_str() {
            "llm" => {
                opts.insert("llm".into(), value.clone());
            }
            "segments_toml" | "llm_toml" => {
                let text = value.as_str().ok_or_else(|| {
                    ApiError::BadRequest(format!("`{name}` must be the file's text"))
                })?;
                let file = if name == "segments_toml" {
                    "segments.toml"
                } else {
                    "llm.toml"
                };
                prompts.push((file, text.to_string()));
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown field `{}`; send `llm`, `segments_toml` and/or `llm_toml`",
                    rfm_core::bounded::value(other, rfm_core::bounded::MAX_VALUE)
                )));
            }
        }
    }
    Ok(prompts)
}

/// `POST /v1/runs/{id}/campaigns`: `{"llm": …, "segments_toml": …, "llm_toml": …}`.
pub async fn campaigns(
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Map<String, Value>>>,
) -> Result<impl IntoResponse, ApiError> {
    valid_id(&id)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let run = s
        .store
        .get(&id)?
        .ok_or_else(|| ApiError::NotFound(format!("no run `{id}`")))?;
    let mut opts = run.options.as_object().cloned().unwrap_or_default();
    let prompts = rerun_fields(&body, &mut opts)?;
    let mut settings = s.settings.clone();
    options::apply(&mut settings, &opts).map_err(ApiError::BadRequest)?;
    let dir = run_dir(&s.data_dir, &id);
    if !prompts.is_empty() {
        if !s.settings.server.allow_custom_templates {
            return Err(ApiError::Forbidden(
                "this service does not take templates from API clients; its operator can \
                 allow them with [server] allow_custom_templates = true"
                    .into(),
            ));
        }
        let dir = dir.clone();
        let files = prompts.clone();
        tokio::task::spawn_blocking(move || check_prompts(&dir, &files))
            .await
            .map_err(ApiError::internal)??;
    }
    let from_source = options::source(&opts).is_some();
    match s.store.requeue(&id, &Value::Object(opts), s.max_active())? {
        Requeue::Queued => {}
        Requeue::Missing => return Err(ApiError::NotFound(format!("no run `{id}`"))),
        Requeue::Active => {
            return Err(ApiError::Conflict(format!(
                "run `{id}` is still in progress; rerun its campaigns once it has finished"
            )));
        }
        Requeue::Full => return Err(busy(&s)),
    }
    if !prompts.is_empty() {
        let new = dir.join("prompts.new");
        let _ = std::fs::remove_dir_all(dir.join("prompts"));
        std::fs::rename(&new, dir.join("prompts"))?;
    }
    configure(
        &mut settings,
        &dir,
        stored_upload(&dir).as_deref(),
        from_source,
    );
    worker::start(s.clone(), id.clone(), settings, Job::Campaigns);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": RunStatus::Queued, "url": format!("/v1/runs/{id}")})),
    ))
}

/// Writes the given prompt files to `prompts.new/` (the others from the run's current
/// prompts or the built-in ones) and parses them; errors name the file.
pub(super) fn check_prompts(dir: &FsPath, files: &[(&str, String)]) -> Result<(), ApiError> {
    let new = dir.join("prompts.new");
    let _ = std::fs::remove_dir_all(&new);
    std::fs::create_dir_all(&new)?;
    for name in ["segments.toml", "llm.toml"] {
        let text = match files.iter().find(|(n, _)| *n == name) {
            Some((_, t)) => t.clone(),
            None => match std::fs::read_to_string(dir.join("prompts").join(name)) {
                Ok(t) => t,
                Err(_) => rfm_campaigns::agent::prompts::built_in_text(name).to_string(),
            },
        };
        std::fs::write(new.join(name), text)?;
    }
    rfm_campaigns::agent::Prompts::from_dir(&new)
        .map(|_| ())
        .map_err(|e| {
            let _ = std::fs::remove_dir_all(&new);
            ApiError::BadRequest(e.to_string().replace(&format!("{}/", new.display()), ""))
        })
}
