//! Waiting for an event in a test that runs real processes or servers: check often, give
//! up after a bound. A wait for something to happen, not a sleep for timing.

use std::time::{Duration, Instant};

/// Waits for `condition`, checking every 5 ms, for at most 10 s.
pub async fn until<F: AsyncFnMut() -> bool>(mut condition: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "the condition never held");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
