//! A progress line on stderr while a request is slow, only when stderr is a terminal.

use std::{
    io::{IsTerminal, Write},
    pin::pin,
    time::Duration,
};

use tokio::time::{Instant, interval_at};

/// How long a request may take before the progress line appears.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// Awaits `future`; past [`QUIET_FOR`], shows on stderr how long it has waited for `url`,
/// and clears the line when the answer comes.
pub async fn while_waiting<F: Future>(url: &str, future: F) -> F::Output {
    if !std::io::stderr().is_terminal() {
        return future.await;
    }
    let started = Instant::now();
    let mut ticks = interval_at(started + QUIET_FOR, Duration::from_secs(1));
    let mut future = pin!(future);
    let mut shown = false;
    loop {
        tokio::select! {
            output = &mut future => {
                if shown {
                    let _ = write!(std::io::stderr(), "\r\x1b[2K");
                }
                return output;
            }
            _ = ticks.tick() => {
                shown = true;
                let _ = write!(std::io::stderr(), "\rwaiting for {url} ... {}s", started.elapsed().as_secs());
                let _ = std::io::stderr().flush();
            }
        }
    }
}
