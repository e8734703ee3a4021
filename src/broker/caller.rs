//! One caller's handle: the provider of its keys for its merchant, and the refusal the
//! upstream last sent it, so that while the store shares that refusal with the fleet (a
//! failure marker, which keeps its status and message but not the body) this caller is
//! still answered with the upstream's own bytes.

use std::sync::Mutex;

use axum::response::Response;

use crate::{
    error::{Error, answer::UpstreamAnswer},
    provider::TokenProvider,
    sync::lock,
};

use super::reply;

/// A caller's provider and last refusal.
pub(super) struct Caller {
    pub(super) provider: TokenProvider,
    refusal: Mutex<Option<UpstreamAnswer>>,
}

impl Caller {
    pub(super) fn new(provider: TokenProvider) -> Self {
        Self {
            provider,
            refusal: Mutex::new(None),
        }
    }

    /// The answer to `error`: the upstream's own answer when there is one (kept when it
    /// is a refusal), the kept refusal when the store shares its status, else a JSON error.
    pub(super) fn answer_failure(&self, error: &Error) -> Response {
        match error {
            Error::Api(api) => {
                if let Some(answer) = api.answer().filter(|a| is_refusal(a.status())) {
                    *lock(&self.refusal) = Some(answer.clone());
                }
            }
            Error::Shared(_) => {
                let kept = lock(&self.refusal).clone();
                if let Some(answer) = kept.filter(|a| error.status() == Some(a.status())) {
                    return reply::passed_on(&answer);
                }
            }
            _ => {}
        }
        reply::failure(error)
    }
}

/// Any error status: a refusal of the keys or the request, or a 429 or 5xx, which the
/// store shares with the fleet as it shares a refusal.
fn is_refusal(status: u16) -> bool {
    status >= 400
}
