//! Reading inputs that may be URLs (`http://`, `https://`), with an optional bearer token from
//! `--token` or `LEDGER_TOKEN`.

use std::io::Read;
use std::time::Duration;

use crate::trust::Failure;

/// Is `s` a URL rather than a path?
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        // No overall limit: a pack may take minutes to stream. Each step and each read has one.
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GETs `url`; a non-2xx answer or a network failure could not be checked (exit 2), with the
/// server's error message when it sent one.
pub fn get(url: &str, token: Option<&str>) -> Result<Box<dyn Read + Send>, Failure> {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let resp = req.call().map_err(|e| Failure::Unchecked(format!("{url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.into_body().read_to_string().unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        return Err(Failure::Unchecked(format!("{url}: HTTP {status}: {}", detail.trim())));
    }
    Ok(Box::new(resp.into_body().into_reader()))
}

/// GETs `url` whole (bounded).
pub fn get_bytes(url: &str, token: Option<&str>, limit: u64) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    get(url, token)?.take(limit + 1).read_to_end(&mut buf).map_err(|e| Failure::Unchecked(format!("{url}: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(Failure::Unchecked(format!("{url}: the answer is over {limit} bytes")));
    }
    Ok(buf)
}
