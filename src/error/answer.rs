//! The upstream's answer as it was sent (status, content type, body bytes), kept beside the
//! refusal or the token read from it, so that the token broker can answer with the
//! upstream's own bytes. Here, in the layer below everything, because errors keep it too.
//! `Debug` shows the status and the body's length, never the body.

use std::{fmt, sync::Arc};

/// One answer of a token endpoint, byte for byte.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UpstreamAnswer {
    status: u16,
    content_type: Option<Arc<str>>,
    body: Arc<[u8]>,
}

impl UpstreamAnswer {
    /// The answer with `status`, `content_type` (if any) and `body`.
    pub(crate) fn new(status: u16, content_type: Option<&str>, body: &[u8]) -> Self {
        Self {
            status,
            content_type: content_type.map(Arc::from),
            body: Arc::from(body),
        }
    }

    /// The HTTP status it came with.
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// Its `Content-Type`, if it had one.
    #[cfg_attr(not(any(feature = "store", feature = "broker")), allow(dead_code))]
    pub(crate) fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The body, as sent.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }
}

impl fmt::Debug for UpstreamAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UpstreamAnswer({}, {} bytes)",
            self.status,
            self.body.len()
        )
    }
}
