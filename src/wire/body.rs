//! Reading a response body with a size limit: a token response is a few kilobytes, so a
//! body past [`MAX_RESPONSE_BYTES`] is a misconfigured proxy or a hostile server, and is
//! not read further.

use std::{io, time::Duration};

use http_body_util::{LengthLimitError, Limited};

use crate::error::Error;

/// The largest response body read: 64 KiB, where a token response is about 2 KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What an answer carries that matters here, read within the limit.
pub(crate) struct LimitedResponse {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// Reads `response` whole, stopping with [`Error::ResponseTooLarge`] past the limit.
pub(crate) async fn read_limited(response: reqwest::Response) -> Result<LimitedResponse, Error> {
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
    let content_type = content_type(response.headers());
    match limit_body(response).bytes().await {
        Ok(body) => Ok(LimitedResponse {
            status,
            retry_after,
            content_type,
            body: body.to_vec(),
        }),
        Err(error) if is_limit_error(&error) => Err(too_large()),
        Err(error) => Err(Error::transport(error)),
    }
}

/// The same response with its body behind `http-body-util`'s [`Limited`], so that reading
/// fails once it passes the limit, with an error that [`is_limit_error`] recognises. The
/// generated binding reads bodies itself, so it gets the response this way too.
pub(crate) fn limit_body(response: reqwest::Response) -> reqwest::Response {
    use reqwest::ResponseBuilderExt;
    // Keep the URL, so that errors while reading name the real one.
    let mut with_url = http::Response::builder().url(response.url().clone());
    let (mut parts, body) = http::Response::from(response).into_parts();
    if let Some(url) = with_url.extensions_mut() {
        parts.extensions.extend(std::mem::take(url));
    }
    let limited = reqwest::Body::wrap(Limited::new(body, MAX_RESPONSE_BYTES));
    reqwest::Response::from(http::Response::from_parts(parts, limited))
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
        if error.is::<LengthLimitError>() || payload.is_some_and(|p| p.is::<LengthLimitError>()) {
            return true;
        }
        source = error.source();
    }
    false
}

/// `Content-Type` as sent, if it is text.
pub(crate) fn content_type(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let value = headers.get(reqwest::header::CONTENT_TYPE)?;
    value.to_str().ok().map(str::to_owned)
}

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
