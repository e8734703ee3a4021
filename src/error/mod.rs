//! The error layer: the one [`Error`] type (here), the three error-body shapes the API
//! sends (`body`), the advice an answer earns (`hint`), and the secret-free excerpts every
//! message quotes (`redact`). It sits below everything else, so any layer can fail with it.
//!
//! May import: flow, integer_or_digits.
//!
//! One error type for every way a token request can fail, and the API's non-200 answer.
//!
//! Each message says what went wrong and what to do about it. No message holds a
//! secret: credentials are never echoed, and bodies are shown as short redacted excerpts.

pub(crate) mod answer;
pub(crate) mod body;
mod hint;
pub(crate) mod redact;

use std::{fmt, sync::Arc, time::Duration};

use crate::flow::Flow;
use answer::UpstreamAnswer;
use body::ErrorBody;

/// Everything that can go wrong when asking for a token.
/// Cheap to clone, so that one failed attempt can be handed to every caller that waited on it,
/// and small (the larger variants are boxed), so that a `Result` holding it costs little to
/// move on the cache's hot path.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value was rejected before anything was sent.
    #[error(transparent)]
    InvalidInput(Box<InvalidInputError>),
    /// The API answered with a status other than 200.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The request did not complete: no connection, a timeout, a broken connection.
    #[error("{}", transport_message(.0))]
    Transport(#[source] Arc<reqwest::Error>),
    /// The task fetching a token ended without an answer: its runtime shut down.
    #[error("the token request was interrupted because its runtime shut down; try again")]
    Interrupted,
    /// The response body was larger than [`crate::MAX_RESPONSE_BYTES`]; reading stopped there.
    #[error(
        "the response (HTTP {status}) is larger than {limit} bytes, far more than a token needs; \
         reading stopped there. Check that the base URL points at the Access Token API"
    )]
    ResponseTooLarge {
        /// The HTTP status of the response.
        status: u16,
        /// The limit that was passed.
        limit: usize,
    },
    /// The API answered 200 with a body that is not a token response.
    #[error(transparent)]
    InvalidResponse(Box<InvalidResponseError>),
    /// Another process sharing the token store failed to fetch this token moments ago;
    /// its failure is returned instead of asking again (feature `store`).
    #[error(transparent)]
    Shared(Box<SharedError>),
    /// A token arrived with less than its margin left
    /// ([`crate::RefreshPolicy::expiry_margin`]), so it was not handed out: the token
    /// endpoint or the network was that slow, the runtime stood still while the answer
    /// waited, or the clock jumped (a suspend) while it was on its way. Asking again may
    /// pass.
    #[error(transparent)]
    ArrivedLate(Box<ArrivedLateError>),
}

/// A token that arrived too late to hand out: [`Error::ArrivedLate`]. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the token arrived with less than its margin left ({:.1} s of its {} s life): its request \
     was sent {:.1} s before it was handed out. The token endpoint or the network took that \
     long, the runtime stood still, or the clock jumped (a suspend); check the network, a \
     blocked runtime and the clock. Asking again is safe",
    .margin.as_secs_f64(),
    .lifetime.as_secs(),
    .took.as_secs_f64()
)]
#[non_exhaustive]
pub struct ArrivedLateError {
    /// From when its request was sent to when it was to be handed out (tokio's clock).
    pub took: Duration,
    /// Its lifetime (`expires_in`).
    pub lifetime: Duration,
    /// The last part of its life in which it is not handed out.
    pub margin: Duration,
}

/// What another process's failed fetch was, as its failure marker in the token store
/// tells it: [`Error::Shared`]. Holds no secret and no body excerpt of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "another process sharing the token store failed to fetch this token moments ago: \
     {message}. Not asked again until its failure marker expires (seconds), so that the \
     fleet does not multiply the requests"
)]
#[non_exhaustive]
pub struct SharedError {
    /// What kind of failure it was.
    pub kind: FailureKind,
    /// The HTTP status the API answered that process with, if it answered.
    pub status: Option<u16>,
    /// That process's error message (already redacted).
    pub message: String,
}

/// The kind of a failure shared through the token store: what a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The API rejected the credentials: fix them; retrying will not help.
    CredentialsRejected,
    /// The API or the network was unavailable (429, 5xx, no connection, a timeout): retry
    /// later.
    Unavailable,
    /// The API refused the request for another reason (another 4xx).
    Refused,
    /// The API's answer was not a token response.
    InvalidResponse,
    /// Unknown: a failure of another kind than these.
    Unknown,
}

/// A value rejected before anything was sent: [`Error::InvalidInput`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field} {reason}; nothing was sent")]
#[non_exhaustive]
pub struct InvalidInputError {
    /// The field or header at fault, for example `Merchant-Serial-Number`.
    pub field: &'static str,
    /// Why it was rejected. Never contains the value itself.
    pub reason: String,
}

/// A 200 answer that is not a token response: [`Error::InvalidResponse`].
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the token response (HTTP {status}) could not be read: {}{reason}; body starts: {excerpt:?}. \
     Check that the base URL points at the Access Token API and not at a proxy or login page",
    .field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default()
)]
#[non_exhaustive]
pub struct InvalidResponseError {
    /// The HTTP status of the response.
    pub status: u16,
    /// The field that could not be read, when one can be named.
    pub field: Option<String>,
    /// What was wrong with it.
    pub reason: String,
    /// The start of the body, with anything that looks like a token or key redacted.
    pub excerpt: String,
}

impl Error {
    pub(crate) fn invalid_input(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput(Box::new(InvalidInputError {
            field,
            reason: reason.into(),
        }))
    }

    /// A 200 answer whose `field` could not be used as it came, for a reason that quotes
    /// nothing the server sent (so there is no excerpt to show).
    pub(crate) fn invalid_response(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidResponse(Box::new(InvalidResponseError {
            status: 200,
            field: Some(field.to_owned()),
            reason: reason.into(),
            excerpt: String::new(),
        }))
    }

    pub(crate) fn arrived_late(took: Duration, lifetime: Duration, margin: Duration) -> Self {
        Self::ArrivedLate(Box::new(ArrivedLateError {
            took,
            lifetime,
            margin,
        }))
    }

    pub(crate) fn transport(error: reqwest::Error) -> Self {
        Self::Transport(Arc::new(error))
    }

    /// Another process's failure, read from the fleet store's marker.
    #[cfg(feature = "store")]
    pub(crate) fn shared(kind: FailureKind, status: Option<u16>, message: String) -> Self {
        Self::Shared(Box::new(SharedError {
            kind,
            status,
            message,
        }))
    }

    /// The HTTP status the API answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(api) => Some(api.status),
            Self::InvalidResponse(invalid) => Some(invalid.status),
            Self::ResponseTooLarge { status, .. } => Some(*status),
            Self::Transport(error) => error.status().map(|s| s.as_u16()),
            Self::Shared(shared) => shared.status,
            Self::InvalidInput(_) | Self::Interrupted | Self::ArrivedLate(_) => None,
        }
    }

    /// True for failures that may pass if tried again: no connection, a timeout, the
    /// statuses 429, 500, 502, 503 and 504, or a token that arrived too late to use.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(error) => error.is_connect() || error.is_timeout(),
            Self::ArrivedLate(_) => true,
            Self::Api(api) => matches!(api.status, 429 | 500 | 502 | 503 | 504),
            Self::Shared(shared) => shared.kind == FailureKind::Unavailable,
            _ => false,
        }
    }

    /// True when the API rejected the credentials: a 401 or 403, or a 400 whose OAuth or
    /// Azure AD `error` is `invalid_client` or `unauthorized_client` (Azure AD answers an
    /// unknown client id with 400 `unauthorized_client`, AADSTS700016). Retrying will not
    /// help.
    pub fn is_credentials_rejected(&self) -> bool {
        match self {
            Self::Api(api) => match api.status {
                401 | 403 => true,
                400 => matches!(
                    api.body.error_code(),
                    Some("invalid_client" | "unauthorized_client")
                ),
                _ => false,
            },
            Self::Shared(shared) => shared.kind == FailureKind::CredentialsRejected,
            _ => false,
        }
    }
}

fn transport_message(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "was redirected, which is refused so that credentials never reach another host"
    } else if error.is_body() || error.is_decode() {
        "broke off while reading the response"
    } else {
        "failed"
    };
    let url = error.url().map(|u| format!(" to {u}")).unwrap_or_default();
    format!(
        "the token request{url} {what}: check the base URL, the network and any proxy; \
         retrying later is safe"
    )
}

/// An answer from the API with a status other than 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    flow: Flow,
    status: u16,
    body: ErrorBody,
    retry_after: Option<Duration>,
    /// The answer as sent, for the token broker; `Debug` shows only its length.
    answer: Option<UpstreamAnswer>,
}

impl ApiError {
    /// Builds the error from the status and the raw body, parsing the body's shape. The
    /// raw body is not kept: the parsed fields are, with every known secret (in any form)
    /// and anything shaped like a token or a key hidden, so that `Display`, `Debug` and
    /// logs show none; a body of no known shape only as a bounded excerpt
    /// ([`ErrorBody::Text`]), redacted here once.
    pub(crate) fn new(
        flow: Flow,
        status: u16,
        retry_after: Option<Duration>,
        body: &[u8],
        secrets: &[&str],
    ) -> Self {
        let body = ErrorBody::parse_redacted(body, secrets);
        Self {
            flow,
            status,
            body,
            retry_after,
            answer: None,
        }
    }

    /// The same error, keeping the answer as sent (never shown).
    pub(crate) fn with_answer(mut self, answer: UpstreamAnswer) -> Self {
        self.answer = Some(answer);
        self
    }

    /// The answer as sent, if this error came from one.
    #[cfg_attr(not(feature = "broker"), allow(dead_code))]
    pub(crate) fn answer(&self) -> Option<&UpstreamAnswer> {
        self.answer.as_ref()
    }

    /// How long the server asked to wait before trying again (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The flow whose request was answered.
    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body, parsed into one of the documented shapes where it has one, with
    /// secrets, tokens and keys replaced by `[redacted]` (ids are kept).
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }

    /// What to do about this answer, in one sentence.
    pub fn hint(&self) -> &'static str {
        hint::hint(self.flow, self.status, &self.body)
    }
}

/// The status, its reason and the body, then `; ` and the [`hint`](ApiError::hint). The
/// alternate form (`{:#}`) leaves the hint out, for callers that show it on a line of its own.
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let body = self.body.to_string();
        write!(
            f,
            "the Access Token API answered HTTP {} {reason}: {}",
            self.status,
            body.trim_end_matches('.'),
        )?;
        if f.alternate() {
            return Ok(());
        }
        write!(f, "; {}", self.hint())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::wire::token::AccessToken;

    /// The cost of a 64 KiB HTML error page: building the error (parse and redact) and
    /// one `Display`, each the mean of 100. Printed, not asserted (speed goals are for
    /// benchmarks): `cargo test --release --lib cost_of_a_64_kib_page -- --nocapture`.
    #[test]
    fn cost_of_a_64_kib_page() {
        let row = "<tr><td class=\"cell\">Lorem ipsum dolor sit amet 0123456789 abcdefABCDEF consectetur</td></tr>\n";
        let mut page = String::from("<!DOCTYPE html><html><body><table>\n");
        while page.len() < 64 * 1024 {
            page.push_str(row);
        }
        let secrets = [
            "Y8Kteew6GE2ZmeycEt6egg==",
            "0f14ebcab0ec4b29ae0cb90d91b4a84a",
        ];
        let build = |_| ApiError::new(Flow::Standard, 502, None, page.as_bytes(), &secrets);
        let started = std::time::Instant::now();
        let errors: Vec<ApiError> = (0..100).map(build).collect();
        let built = started.elapsed() / 100;
        let started = std::time::Instant::now();
        let shown: usize = errors.iter().map(|e| e.to_string().len()).sum();
        let displayed = started.elapsed() / 100;
        let debug = errors.first().map(|e| format!("{e:?}").len()).unwrap_or(0);
        eprintln!(
            "64 KiB page: build {built:?}, Display {displayed:?} ({} chars), Debug {debug} bytes",
            shown / 100
        );
    }

    /// The cache's hot path returns `Result<Arc<AccessToken>, Error>`: a large error makes
    /// every hit move and drop a large value, so the big variants stay boxed.
    #[test]
    fn a_token_result_stays_small() {
        assert!(size_of::<Error>() <= 24, "{} bytes", size_of::<Error>());
        assert!(size_of::<Result<Arc<AccessToken>, Error>>() <= 24);
    }
}
