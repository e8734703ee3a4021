//! [`SingleFlight`]: at most one run of a job at a time; everyone who asks meanwhile shares
//! its outcome.
//!
//! The job runs in a task of its own, so it finishes (and its side effects happen) even when
//! every caller waiting for it gives up. The entry that marks it in flight is cleared by a
//! guard the task owns: when the job finishes, and also when the task is dropped without
//! finishing (its runtime shut down, or it panicked). So no sequence of cancelled callers,
//! dropped runtimes or panics leaves the entry behind, and the next call starts afresh.

use std::{
    future::Future,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use futures_util::{
    FutureExt,
    future::{self, BoxFuture, Either, Shared},
};

use crate::sync::lock;

/// Why a shared run ended without an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Abandoned;

type Outcome<T> = Result<T, Abandoned>;
type SharedRun<T> = Shared<BoxFuture<'static, Outcome<T>>>;

/// One job in flight at a time.
pub(crate) struct SingleFlight<T: Clone + Send + Sync + 'static> {
    inner: Arc<Inner<T>>,
}

struct Inner<T: Clone> {
    running: Mutex<Option<Running<T>>>,
    next_id: AtomicU64,
}

struct Running<T: Clone> {
    id: u64,
    run: SharedRun<T>,
}

impl<T: Clone + Send + Sync + 'static> Default for SingleFlight<T> {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                running: Mutex::new(None),
                next_id: AtomicU64::new(0),
            }),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// Whether a job is in flight now.
    pub(crate) fn is_running(&self) -> bool {
        lock(&self.inner.running).is_some()
    }

    /// Starts `job` unless one is in flight or `still_needed` says no; returns without
    /// waiting for it. For refreshing in the background.
    pub(crate) fn start<F>(&self, still_needed: impl FnOnce() -> bool, job: impl FnOnce() -> F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut running = lock(&self.inner.running);
        if running.is_none() && still_needed() {
            *running = Some(self.spawn(job()));
        }
    }

    /// The outcome of the job in flight, or `done()` if that has one (a job that finished
    /// between the caller's last look and now), or of `job`, started now. `done` and the
    /// start are decided under one lock with the end of the previous job, so two callers
    /// never start two jobs for one need.
    ///
    /// `Err(Abandoned)` when the task running the job was dropped before it finished; the
    /// entry is cleared by then, so the next call starts afresh.
    pub(crate) fn join_or_start<F>(
        &self,
        done: impl FnOnce() -> Option<T>,
        job: impl FnOnce() -> F,
    ) -> impl Future<Output = Outcome<T>> + Send + 'static
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut running = lock(&self.inner.running);
        if let Some(running) = running.as_ref() {
            return Either::Left(running.run.clone());
        }
        if let Some(value) = done() {
            return Either::Right(future::ready(Ok(value)));
        }
        let started = self.spawn(job());
        let run = started.run.clone();
        *running = Some(started);
        Either::Left(run)
    }

    /// Spawns `work` with the guard that clears its entry when it ends.
    fn spawn<F>(&self, work: F) -> Running<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let guard = ClearOnDrop {
            inner: Arc::downgrade(&self.inner),
            id,
        };
        let work = async move {
            let outcome = work.await;
            drop(guard);
            outcome
        };
        Running {
            id,
            run: spawn(work),
        }
    }
}

/// Runs `work` in a task on the current runtime, so that it does not depend on any caller
/// polling it. Outside a runtime, whoever awaits it drives it.
fn spawn<T, F>(work: F) -> SharedRun<T>
where
    T: Clone + Send + Sync + 'static,
    F: Future<Output = T> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let task = runtime.spawn(work);
            async move { task.await.map_err(|_| Abandoned) }
                .boxed()
                .shared()
        }
        Err(_) => work.map(Ok).boxed().shared(),
    }
}

/// Clears the in-flight entry it was made for, when the job ends or is dropped.
struct ClearOnDrop<T: Clone> {
    inner: Weak<Inner<T>>,
    id: u64,
}

impl<T: Clone> Drop for ClearOnDrop<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut running = lock(&inner.running);
        if running.as_ref().is_some_and(|r| r.id == self.id) {
            *running = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn callers_meanwhile_share_one_run() {
        let flight = SingleFlight::<usize>::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let job = {
            let runs = runs.clone();
            move || async move {
                released.await.ok();
                runs.fetch_add(1, Ordering::SeqCst) + 1
            }
        };
        let first = flight.join_or_start(|| None, job);
        let second =
            flight.join_or_start(|| None, || async { unreachable!("joins the first run") });
        assert!(flight.is_running());
        release.send(()).unwrap();
        assert_eq!(first.await, Ok(1));
        assert_eq!(second.await, Ok(1));
        assert!(!flight.is_running());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_run_whose_runtime_is_dropped_is_cleared_and_replaced() {
        let flight = SingleFlight::<u32>::default();
        let first_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stuck = {
            let _inside = first_runtime.enter();
            flight.join_or_start(|| None, std::future::pending::<u32>)
        };
        assert!(flight.is_running());
        drop(first_runtime);
        assert!(!flight.is_running(), "the dropped task cleared its entry");

        let second_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        second_runtime.block_on(async {
            assert_eq!(stuck.await, Err(Abandoned));
            assert_eq!(flight.join_or_start(|| None, || async { 7 }).await, Ok(7));
        });
    }

    #[tokio::test]
    async fn a_panicking_job_clears_its_entry() {
        let flight = SingleFlight::<u32>::default();
        let outcome = flight
            .join_or_start(|| None, || async { panic!("the job fails hard") })
            .await;
        assert_eq!(outcome, Err(Abandoned));
        assert!(!flight.is_running());
        assert_eq!(flight.join_or_start(|| None, || async { 3 }).await, Ok(3));
    }

    #[tokio::test]
    async fn a_need_met_meanwhile_starts_nothing() {
        let flight = SingleFlight::<u32>::default();
        let outcome = flight
            .join_or_start(|| Some(5), || async { unreachable!("already done") })
            .await;
        assert_eq!(outcome, Ok(5));
        flight.start(|| false, || async { unreachable!("no longer needed") });
        assert!(!flight.is_running());
    }
}
