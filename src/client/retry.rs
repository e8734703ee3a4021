//! Retrying transient failures: bounded exponential backoff with equal jitter, `Retry-After`
//! honoured up to a cap, and a total time budget. Credentials rejected (400, 401, 403)
//! are never retried: trying again cannot help and may lock the keys.
//!
//! Every sum and product of times here saturates: the policy's fields are public and a
//! server's `Retry-After` can be any number, so `Duration::MAX` is a value, not a panic.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

use crate::error::Error;

/// When and how often a failed token request is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. `1` turns retrying off.
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each one after it.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts, `Retry-After` included. `Duration::MAX`
    /// lets any `Retry-After` through (still within [`Self::max_total`]).
    pub max_backoff: Duration,
    /// No retry starts once this long has passed since the first attempt began.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    /// At most 3 attempts and about 10 s in all.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            max_total: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the policy runs out.
    pub(crate) async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let started = Instant::now();
        let mut tried = 1;
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let Some(wait) = self.wait_before_retry(&error, tried) else {
                return Err(error);
            };
            if started.elapsed().saturating_add(wait) > self.max_total {
                return Err(error);
            }
            tracing::debug!(attempt = tried, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), %error, "retrying the token request");
            tokio::time::sleep(wait).await;
            tried = tried.saturating_add(1);
        }
    }

    /// How long to wait before another attempt after `error`, or `None` to stop.
    fn wait_before_retry(&self, error: &Error, tried: u32) -> Option<Duration> {
        if tried >= self.max_attempts || !error.is_transient() {
            return None;
        }
        let backoff = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(tried.saturating_sub(1)))
            .min(self.max_backoff);
        // Equal jitter (AWS's name): half the backoff fixed, half random, so a fleet's
        // retries spread out yet none comes sooner than half the backoff. Checked: near
        // `Duration::MAX`, a float product can round past what a `Duration` holds.
        let jittered =
            Duration::try_from_secs_f64(backoff.as_secs_f64() * (0.5 + fastrand::f64() / 2.0))
                .map_or(backoff, |jittered| jittered.min(backoff));
        let asked = match error {
            Error::Api(api) => api.retry_after(),
            _ => None,
        };
        Some(asked.map_or(jittered, |asked| asked.min(self.max_backoff)))
    }
}
