//! `GET /v1/runs/{id}/files/{path}`: a run's output files, by plain names only.

use super::*;

/// One plain name, or `segments/` and one plain name: no separators, dots or traversal.
pub(super) fn valid_file(path: &str) -> bool {
    let plain = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match path.split_once('/') {
        None => plain(path),
        Some(("segments", rest)) => plain(rest),
        Some(_) => false,
    }
}

pub async fn file(
    State(s): State<Shared>,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    valid_id(&id)?;
    let missing = || ApiError::NotFound(format!("run `{id}` has no file `{path}`"));
    if !valid_file(&path) {
        return Err(missing());
    }
    let full = run_dir(&s.data_dir, &id).join("out").join(&path);
    let bytes = tokio::fs::read(&full).await.map_err(|_| missing())?;
    let ext = path.rsplit('.').next().unwrap_or("");
    let kind = match ext {
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        _ => "application/octet-stream",
    };
    let mut resp = ([(header::CONTENT_TYPE, kind)], bytes).into_response();
    let h = resp.headers_mut();
    // The report is self-contained: no scripts, nothing fetched.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'",
        ),
    );
    if matches!(ext, "csv" | "json" | "md") {
        let download = path.replace('/', "-");
        if let Ok(v) =
            header::HeaderValue::from_str(&format!("attachment; filename=\"{download}\""))
        {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}
