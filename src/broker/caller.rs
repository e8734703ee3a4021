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

    /// The answer to `error`: the upstream's own answer when there is one (and kept: a
    /// refusal, a 429, a 5xx), the kept one when the store shares its status, else JSON.
    pub(super) fn answer_failure(&self, error: &Error) -> Response {
        if let Some(answer) = reply::upstream_answer(error) {
            *lock(&self.refusal) = Some(answer.clone());
        } else if let Error::Shared(_) = error {
            let kept = lock(&self.refusal).clone();
            if let Some(answer) = kept.filter(|a| error.status() == Some(a.status())) {
                return reply::passed_on(&answer);
            }
        }
        reply::failure(error)
    }
}
