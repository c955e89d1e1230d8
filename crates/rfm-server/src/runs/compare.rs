//! `GET /v1/compare`: the migration between two finished runs.

use super::*;

#[derive(serde::Deserialize)]
pub struct ComparePair {
    before: String,
    after: String,
}

/// `GET /v1/compare?before=ID&after=ID`: the migration matrix between two finished runs.
pub async fn compare(
    State(s): State<Shared>,
    Query(q): Query<ComparePair>,
) -> Result<Json<Value>, ApiError> {
    let mut folders = Vec::new();
    for id in [&q.before, &q.after] {
        valid_id(id)?;
        let run = s
            .store
            .get(id)?
            .ok_or_else(|| ApiError::NotFound(format!("no run `{id}`")))?;
        if run.status != RunStatus::Done {
            return Err(ApiError::Conflict(format!(
                "run `{id}` is {}; compare needs two finished runs",
                run.status
            )));
        }
        let out = run_dir(&s.data_dir, id).join("out");
        let folder = tokio::task::spawn_blocking(move || rfm_report::compare::Side::read(&out))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        folders.push(folder);
    }
    let m = rfm_report::compare::compare(&folders[0], &folders[1]);
    let mut v = serde_json::to_value(&m).map_err(ApiError::internal)?;
    v["before"] = Value::String(q.before.clone());
    v["after"] = Value::String(q.after.clone());
    if folders[0].frequency != folders[1].frequency {
        v["warning"] = Value::String(format!(
            "the runs count frequency differently ({} and {}); centroids are matched anyway",
            folders[0].frequency.as_str(),
            folders[1].frequency.as_str()
        ));
    }
    Ok(Json(v))
}
