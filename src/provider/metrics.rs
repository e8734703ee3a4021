//! What the provider reports through the [`metrics`](https://docs.rs/metrics) facade, with the
//! feature `metrics`; without it, every function here is empty and compiles away.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `vipps_access_token_fetches_total` | counter | `flow`, `outcome` | token requests the provider made (retries inside one fetch count once) |
//! | `vipps_access_token_fetch_duration_seconds` | histogram | `flow`, `outcome` | how long each took, retries included |
//! | `vipps_access_token_expires_in_seconds` | gauge | `flow` | seconds until the soonest expiry among the flow's cached, usable tokens (every merchant and key of the flow: the one to act on first), set after every fetch, whether it succeeded or failed |
//! | `vipps_access_token_refresh_failures_total` | counter | `flow` | refreshes that failed while a valid token was still served: act before it expires |
//! | `vipps_access_token_slots` | gauge | | keys the provider holds a slot for |
//! | `vipps_access_token_slot_evictions_total` | counter | | slots evicted to stay within the bound |
//! | `vipps_access_token_unauthorized_total` | counter | `flow`, `outcome` | API calls answered 401, by what was done: `not_token` (the 401 is about something else, such as the subscription key: returned as is), `refreshed` (a refresh was forced and the call retried), `newer_token` (retried with a token another call's refresh produced), `rate_limited` (a refresh was forced for the same keys and endpoint, any merchant, less than `forced_refresh_interval` ago: returned as is); a forced refresh that fails is counted `refreshed` and the 401 returned as is |
//!
//! `flow` is `standard`, `partner` or `legacy`; `outcome` is `success` or the error's kind
//! (`api`, `transport`, `invalid_response`, `response_too_large`, `interrupted`,
//! `invalid_input`). No label carries a secret, a client id or a merchant serial number.

#[cfg(feature = "metrics")]
use std::time::Duration;

#[cfg(feature = "metrics")]
use crate::error::Error;

/// A fetch ended after `elapsed` with `outcome`.
#[cfg(feature = "metrics")]
pub(crate) fn fetch_finished<T>(flow: &'static str, outcome: &Result<T, Error>, elapsed: Duration) {
    let outcome = match outcome {
        Ok(_) => "success",
        Err(error) => error_kind(error),
    };
    let labels = [("flow", flow), ("outcome", outcome)];
    metrics::counter!("vipps_access_token_fetches_total", &labels).increment(1);
    metrics::histogram!("vipps_access_token_fetch_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
}

/// The soonest-expiring cached token of `flow` now expires in `left`.
#[cfg(feature = "metrics")]
pub(crate) fn expires_in(flow: &'static str, left: Duration) {
    metrics::gauge!("vipps_access_token_expires_in_seconds", "flow" => flow)
        .set(left.as_secs_f64());
}

/// A refresh of `flow` failed while a valid token is still served.
#[cfg(feature = "metrics")]
pub(crate) fn refresh_failed(flow: &'static str) {
    metrics::counter!("vipps_access_token_refresh_failures_total", "flow" => flow).increment(1);
}

/// The provider holds `count` slots.
#[cfg(feature = "metrics")]
pub(crate) fn slots_in_use(count: usize) {
    metrics::gauge!("vipps_access_token_slots").set(count as f64);
}

/// A sweep evicted `count` slots.
#[cfg(feature = "metrics")]
pub(crate) fn slots_evicted(count: usize) {
    metrics::counter!("vipps_access_token_slot_evictions_total").increment(count as u64);
}

/// An API call of `flow` was answered 401, and `outcome` is what was done about it.
#[cfg(feature = "metrics")]
pub(crate) fn unauthorized(flow: &'static str, outcome: &'static str) {
    metrics::counter!("vipps_access_token_unauthorized_total", "flow" => flow, "outcome" => outcome)
        .increment(1);
}

#[cfg(feature = "metrics")]
fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::InvalidInput(_) => "invalid_input",
        Error::Api(_) => "api",
        Error::Transport(_) => "transport",
        Error::Interrupted => "interrupted",
        Error::ResponseTooLarge { .. } => "response_too_large",
        Error::InvalidResponse(_) => "invalid_response",
        Error::Shared(_) => "shared",
        Error::ArrivedLate(_) => "arrived_late",
    }
}

#[cfg(not(feature = "metrics"))]
mod disabled {
    use std::time::Duration;

    use crate::error::Error;

    pub(crate) fn fetch_finished<T>(_: &'static str, _: &Result<T, Error>, _: Duration) {}
    pub(crate) fn refresh_failed(_: &'static str) {}
    pub(crate) fn slots_in_use(_: usize) {}
    pub(crate) fn slots_evicted(_: usize) {}
    pub(crate) fn unauthorized(_: &'static str, _: &'static str) {}
}

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::*;
