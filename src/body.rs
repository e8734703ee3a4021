//! Reading a response body with a size limit: a token response is a few kilobytes, so a
//! body past [`MAX_RESPONSE_BYTES`] is a misconfigured proxy or a hostile server, and is
//! not read further.

use std::{fmt, io, time::Duration};

use futures_util::StreamExt;

use crate::Error;

/// The largest response body read: 64 KiB, where a token response is about 2 KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What an answer carries that matters here, read within the limit.
pub(crate) struct LimitedResponse {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

/// Reads `response` whole, stopping with [`Error::ResponseTooLarge`] past the limit.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
) -> Result<LimitedResponse, Error> {
    let status = response.status().as_u16();
    let too_large = || Error::ResponseTooLarge {
        status,
        limit: MAX_RESPONSE_BYTES,
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_RESPONSE_BYTES => {
                return Err(too_large());
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) if is_limit_error(&error) => return Err(too_large()),
            Err(error) => return Err(Error::transport(error)),
        }
    }
    Ok(LimitedResponse {
        status,
        retry_after,
        body,
    })
}

/// The same response with a body that fails once it passes the limit, for the generated
/// binding, which reads bodies itself. Its read then fails with an error that
/// [`is_limit_error`] recognises.
pub(crate) fn limit_body(response: reqwest::Response) -> reqwest::Response {
    use reqwest::ResponseBuilderExt;
    // Keep the URL, so that errors while reading name the real one.
    let mut builder = http::Response::builder()
        .status(response.status())
        .version(response.version())
        .url(response.url().clone());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let mut seen = 0usize;
    let limited = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(io::Error::other)?;
        seen += chunk.len();
        if seen > MAX_RESPONSE_BYTES {
            return Err(io::Error::other(BodyLimitExceeded));
        }
        Ok(chunk)
    });
    match builder.body(reqwest::Body::wrap_stream(limited)) {
        Ok(limited) => reqwest::Response::from(limited),
        // Unreachable: status, version and headers come from a valid response.
        Err(_) => unreachable_response(),
    }
}

fn unreachable_response() -> reqwest::Response {
    reqwest::Response::from(http::Response::new(reqwest::Body::from(Vec::new())))
}

/// True when `error` comes from a body cut off by [`limit_body`].
pub(crate) fn is_limit_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        // `io::Error::source` skips its own payload, so look inside it too.
        let payload = error
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        if error.is::<BodyLimitExceeded>() || payload.is_some_and(|p| p.is::<BodyLimitExceeded>()) {
            return true;
        }
        source = error.source();
    }
    false
}

#[derive(Debug)]
struct BodyLimitExceeded;

impl fmt::Display for BodyLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the body is larger than {MAX_RESPONSE_BYTES} bytes")
    }
}

impl std::error::Error for BodyLimitExceeded {}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}
