//! Fault injection (canned answers, delays) and request counts, shared between the
//! [`super::MockServer`] handle and the request handlers.

use std::{
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use super::{endpoint::Endpoint, fault::Fault};
use crate::sync::lock;

#[derive(Debug)]
enum Times {
    Next(u64),
    All,
}

#[derive(Debug, Default)]
struct Plan {
    fault: Option<(Fault, Times)>,
    delay: Duration,
}

/// What the next requests get, and how many have been served.
#[derive(Debug, Default)]
pub(super) struct Faults {
    plan: Mutex<Plan>,
    total: AtomicU64,
    by_endpoint: [AtomicU64; Endpoint::ALL.len()],
}

impl Faults {
    /// Answers the next `times` token requests with `fault`, or all of them when `None`.
    pub(super) fn fail(&self, fault: Fault, times: Option<u64>) {
        let times = times.map_or(Times::All, Times::Next);
        self.plan().fault = (!matches!(times, Times::Next(0))).then_some((fault, times));
    }

    pub(super) fn clear(&self) {
        let mut plan = self.plan();
        plan.fault = None;
        plan.delay = Duration::ZERO;
    }

    pub(super) fn set_delay(&self, delay: Duration) {
        self.plan().delay = delay;
    }

    /// Counts a request to `endpoint` (`None`: any other path).
    pub(super) fn count(&self, endpoint: Option<Endpoint>) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(endpoint) = endpoint {
            self.by_endpoint[endpoint as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The canned answer for this request, if any, and the delay before answering.
    pub(super) fn next(&self) -> (Option<Fault>, Duration) {
        let mut plan = self.plan();
        let fault = match &mut plan.fault {
            None => None,
            Some((fault, Times::All)) => Some(fault.clone()),
            Some((fault, Times::Next(left))) => {
                let fault = fault.clone();
                *left = left.saturating_sub(1);
                if *left == 0 {
                    plan.fault = None;
                }
                Some(fault)
            }
        };
        (fault, plan.delay)
    }

    pub(super) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(super) fn to(&self, endpoint: Endpoint) -> u64 {
        self.by_endpoint[endpoint as usize].load(Ordering::Relaxed)
    }

    /// The plan, even if a thread panicked while holding it: it is always consistent.
    fn plan(&self) -> MutexGuard<'_, Plan> {
        lock(&self.plan)
    }
}
