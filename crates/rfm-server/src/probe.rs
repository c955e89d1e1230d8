//! `rfm-agent healthcheck`: asks a running service's `/healthz`, for a container's
//! HEALTHCHECK (the runtime image has no curl or wget). Exit 0 when it answers `ok`.

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Most of the answer read: `/healthz` says `ok`.
const MAX_BODY: usize = 64;

/// Asks `{base}/healthz` and waits at most `timeout` for the whole answer.
pub async fn healthcheck(base: &str, timeout: Duration) -> Result<()> {
    let url = format!("{}/healthz", base.trim_end_matches('/'));
    rfm_core::tls::install();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot set up the HTTP client")?;
    let mut resp =
        client.get(&url).send().await.with_context(|| {
            format!("{url}: no answer within {timeout:?}; is the service running?")
        })?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .with_context(|| format!("{url}: the answer broke off"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            break;
        }
    }
    if !status.is_success() || String::from_utf8_lossy(&body).trim() != "ok" {
        bail!("{url}: answered {status}, not `ok`: the service is not healthy");
    }
    Ok(())
}
