//! The guides: how to use the crate for each job, one page each.
//!
//! Each is a Markdown file in the repository's `docs/` directory, included here so that
//! docs.rs shows it and its examples compile, and run where they need no real API, as
//! doctests: a guide cannot teach code that no longer builds.
//!
//! - [`service`]: [`TokenProvider`](crate::TokenProvider), the middleware, 401s, the
//!   cache, metrics.
//! - [`client`]: the three flows with [`Client`](crate::Client), one token at a time; any
//!   other HTTP client.
//! - [`testing`]: your tests against the embedded mock, on tokio's paused clock.
//! - [`fleet_store`]: one fetch for a fleet, through Redis.
//! - [`file_cache`]: one fetch for every process on a machine.
//! - [`errors_and_guarantees`]: the errors, retries, timeouts, limits, what is never shown.
//! - [`live_conformance`]: does the real API still match its docs?
//! - [`spec_updates`]: what a new spec means, before it is committed.
//! - [`design`]: what the crate chose, and why.

#[doc = include_str!("../docs/service.md")]
pub mod service {}

#[doc = include_str!("../docs/client.md")]
pub mod client {}

#[doc = include_str!("../docs/testing.md")]
pub mod testing {}

#[doc = include_str!("../docs/fleet-store.md")]
pub mod fleet_store {}

#[doc = include_str!("../docs/file-cache.md")]
pub mod file_cache {}

#[doc = include_str!("../docs/errors-and-guarantees.md")]
pub mod errors_and_guarantees {}

#[doc = include_str!("../docs/live-conformance.md")]
pub mod live_conformance {}

#[doc = include_str!("../docs/spec-updates.md")]
pub mod spec_updates {}

#[doc = include_str!("../docs/design.md")]
pub mod design {}
