//! [`SingleFlight`]: at most one run of a job at a time; everyone who asks meanwhile shares
//! its outcome.
//!
//! The job runs in a task of its own on the runtime of the caller that started it, so it
//! finishes (and its side effects happen) even when every caller waiting for it gives up.
//! The entry that marks it in flight is cleared by a guard the task owns: when the job
//! finishes, and also when the task is dropped without finishing (its runtime shut down,
//! or it panicked). So no sequence of cancelled callers, dropped runtimes or panics leaves
//! the entry behind, and the next call starts afresh.
//!
//! Two rules keep it from wedging:
//!
//! - **Nothing that can drop a job runs under the lock its guard takes.** Tokio drops a
//!   future inside `spawn` when the runtime is shutting down, and its guard then locks the
//!   entry: so the task is spawned after the lock is released, and an entry taken out of
//!   the map is dropped after the lock is released too.
//! - **No caller is hostage to another runtime.** A caller on another runtime than the
//!   job's checks, while it waits, that the job's runtime still runs tasks (it spawns an
//!   empty one there). A runtime that is shut down, idle (a current-thread runtime whose
//!   `block_on` returned) or blocked fails the check, and the caller starts a new run on
//!   its own runtime in place of the stalled one. It does not drive the stalled job
//!   itself: the job's sockets are registered with the reactor of the runtime that first
//!   polled them, so polled from elsewhere they would never wake.
//!
//! A caller gives up ([`Abandoned`]) only when a run on its own runtime ends without an
//! outcome: its runtime is shutting down, or the job panicked. When a run on another
//! runtime does, the caller's next run is one on its own runtime (joined, or started in
//! place of whatever is in flight elsewhere), so churning runtimes cannot wear it out.

use std::{
    future::Future,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use tokio::{runtime::Handle, sync::oneshot};

use crate::sync::lock;

/// How long a caller on another runtime waits for the job before it checks that the job's
/// runtime still runs tasks; and again after every check that passes.
pub(crate) const STALL_CHECK_AFTER: Duration = Duration::from_millis(100);

/// How long the job's runtime has to run an empty task before it counts as stalled. A live
/// runtime runs one in microseconds; a generous bound, since a false alarm costs an extra
/// request.
pub(crate) const STALL_CHECK_TIMEOUT: Duration = Duration::from_millis(250);

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

/// The run in flight: what a caller needs to wait for it.
#[derive(Clone)]
struct Running<T: Clone> {
    id: u64,
    run: SharedRun<T>,
    /// The runtime the job's task runs on; `None` when the callers drive it themselves.
    owner: Option<Handle>,
}

/// A run prepared under the lock, to be spawned once the lock is released.
struct Launch {
    runtime: Handle,
    task: BoxFuture<'static, ()>,
}

/// What waiting for a run came to.
enum Waited<T> {
    Done(T),
    /// The run's task was dropped before it finished.
    Abandoned(u64),
    /// The run's runtime no longer runs tasks.
    Stalled(u64),
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
    /// waiting for it. For refreshing in the background; outside a runtime, nothing starts.
    pub(crate) fn start<F>(&self, still_needed: impl FnOnce() -> bool, job: impl FnOnce() -> F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let Ok(runtime) = Handle::try_current() else {
            return;
        };
        let launch = {
            let mut running = lock(&self.inner.running);
            if running.is_some() || !still_needed() {
                return;
            }
            let (entry, launch) = self.prepare(job(), Some(runtime));
            *running = Some(entry);
            launch
        };
        if let Some(launch) = launch {
            launch.spawn();
        }
    }

    /// The outcome of the job in flight, or `done()` if that has one (a job that finished
    /// between the caller's last look and now), or of `job`, started now. `done` and the
    /// start are decided under one lock with the end of the previous job, so two callers
    /// never start two jobs for one need.
    ///
    /// A run on another runtime whose task is dropped (its runtime shut down) or whose
    /// runtime stalls is replaced by one on the caller's runtime. `Err(Abandoned)` when a
    /// run on the caller's own runtime ends without an outcome (that runtime is shutting
    /// down, or the job panicked).
    pub(crate) async fn run<F>(
        &self,
        done: impl Fn() -> Option<T>,
        job: impl Fn() -> F,
    ) -> Outcome<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut replacing = None;
        loop {
            let running = match self.join_or_start(replacing, &done, &job) {
                Ok(running) => running,
                Err(value) => return Ok(value),
            };
            let here = running.runs_here();
            match running.wait().await {
                Waited::Done(value) => return Ok(value),
                // Its own runtime is going, or the job panicked: another run would too.
                Waited::Abandoned(_) | Waited::Stalled(_) if here => return Err(Abandoned),
                Waited::Abandoned(id) => {
                    tracing::debug!("a vipps access token fetch was abandoned: starting another");
                    replacing = Some(id);
                }
                Waited::Stalled(id) => {
                    tracing::debug!(
                        "the runtime of a vipps access token fetch runs no tasks: starting another here"
                    );
                    replacing = Some(id);
                }
            }
        }
    }

    /// The run to wait for: the one in flight (unless it is `replacing`, or, once a run
    /// failed the caller, runs on another runtime), or a new one; or `Err` with the value
    /// `done()` found.
    fn join_or_start<F>(
        &self,
        replacing: Option<u64>,
        done: impl FnOnce() -> Option<T>,
        job: impl FnOnce() -> F,
    ) -> Result<Running<T>, T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (joined, replaced, launch) = {
            let mut running = lock(&self.inner.running);
            match running.as_ref() {
                Some(current)
                    if Some(current.id) != replacing
                        && (replacing.is_none() || current.runs_here()) =>
                {
                    return Ok(current.clone());
                }
                Some(_) => {}
                None => {
                    if let Some(value) = done() {
                        return Err(value);
                    }
                }
            }
            let (entry, launch) = self.prepare(job(), Handle::try_current().ok());
            let joined = entry.clone();
            (joined, running.replace(entry), launch)
        };
        // Outside the lock: either may drop a job, whose guard takes the lock.
        drop(replaced);
        if let Some(launch) = launch {
            launch.spawn();
        }
        Ok(joined)
    }

    /// The entry for `work` and, on a runtime, the task to spawn once the lock is released.
    /// Outside a runtime the callers who wait drive `work` themselves.
    fn prepare<F>(&self, work: F, runtime: Option<Handle>) -> (Running<T>, Option<Launch>)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let guard = ClearOnDrop {
            inner: Arc::downgrade(&self.inner),
            id,
            sender: Some(sender),
        };
        let task = async move { guard.finish(work.await) }.boxed();
        let received = async move { receiver.await.map_err(|_| Abandoned) };
        match runtime {
            Some(runtime) => (
                Running {
                    id,
                    run: received.boxed().shared(),
                    owner: Some(runtime.clone()),
                },
                Some(Launch { runtime, task }),
            ),
            None => {
                let driven = async move {
                    task.await;
                    received.await
                };
                let run = driven.boxed().shared();
                (
                    Running {
                        id,
                        run,
                        owner: None,
                    },
                    None,
                )
            }
        }
    }
}

impl Launch {
    /// Spawns the task, detached. On a runtime that is shutting down, tokio drops it here.
    fn spawn(self) {
        drop(self.runtime.spawn(self.task));
    }
}

impl<T: Clone + Send + Sync + 'static> Running<T> {
    /// Whether the run goes on as long as the caller's runtime does: it is a task on that
    /// runtime, or the callers drive it themselves.
    fn runs_here(&self) -> bool {
        match (&self.owner, Handle::try_current()) {
            (None, _) => true,
            (Some(owner), Ok(caller)) => owner.id() == caller.id(),
            (Some(_), Err(_)) => false,
        }
    }

    /// Waits for the run; from another runtime than the run's, checks that runtime keeps
    /// running tasks.
    async fn wait(self) -> Waited<T> {
        let Self { id, mut run, owner } = self;
        let elsewhere = owner
            .filter(|owner| Handle::try_current().is_ok_and(|caller| caller.id() != owner.id()));
        let Some(owner) = elsewhere else {
            return match run.await {
                Ok(value) => Waited::Done(value),
                Err(Abandoned) => Waited::Abandoned(id),
            };
        };
        loop {
            match tokio::time::timeout(STALL_CHECK_AFTER, &mut run).await {
                Ok(Ok(value)) => return Waited::Done(value),
                Ok(Err(Abandoned)) => return Waited::Abandoned(id),
                Err(_) if runs_tasks(&owner).await => {}
                Err(_) => return Waited::Stalled(id),
            }
        }
    }
}

/// Whether `runtime` runs an empty task within [`STALL_CHECK_TIMEOUT`].
async fn runs_tasks(runtime: &Handle) -> bool {
    let probe = runtime.spawn(async {});
    matches!(
        tokio::time::timeout(STALL_CHECK_TIMEOUT, probe).await,
        Ok(Ok(()))
    )
}

/// Clears the in-flight entry it was made for, then hands over the outcome: when the job
/// ends, or (with no outcome, which its waiters see as [`Abandoned`]) when it is dropped.
struct ClearOnDrop<T: Clone> {
    inner: Weak<Inner<T>>,
    id: u64,
    sender: Option<oneshot::Sender<T>>,
}

impl<T: Clone> ClearOnDrop<T> {
    fn finish(mut self, outcome: T) {
        self.clear();
        if let Some(sender) = self.sender.take() {
            // No receiver left means nobody waits: fine.
            let _ = sender.send(outcome);
        }
    }

    /// Clears the entry if it is still this run's. The entry is dropped after the lock is
    /// released: dropping it may drop a job, whose guard takes the lock.
    fn clear(&self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let cleared = {
            let mut running = lock(&inner.running);
            if running.as_ref().is_some_and(|r| r.id == self.id) {
                running.take()
            } else {
                None
            }
        };
        drop(cleared);
    }
}

impl<T: Clone> Drop for ClearOnDrop<T> {
    fn drop(&mut self) {
        if self.sender.is_some() {
            self.clear();
        }
        // The sender goes after the entry, so a waiter told "abandoned" never finds it.
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
        let (release, released) = oneshot::channel::<()>();
        let released = Mutex::new(Some(released));
        let job = || {
            let runs = runs.clone();
            let released = lock(&released).take().expect("started once");
            async move {
                released.await.ok();
                runs.fetch_add(1, Ordering::SeqCst) + 1
            }
        };
        let first = flight.run(|| None, job);
        let second = flight.run(|| None, || async { unreachable!("joins the first run") });
        let release = async {
            tokio::task::yield_now().await;
            assert!(flight.is_running());
            release.send(()).unwrap();
        };
        let (first, second, ()) = tokio::join!(first, second, release);
        assert_eq!((first, second), (Ok(1), Ok(1)));
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
            flight
                .join_or_start(None, || None, std::future::pending::<u32>)
                .unwrap_or_else(|_| unreachable!("nothing done"))
        };
        assert!(flight.is_running());
        drop(first_runtime);
        assert!(!flight.is_running(), "the dropped task cleared its entry");

        let second_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        second_runtime.block_on(async {
            assert!(matches!(stuck.wait().await, Waited::Abandoned(_)));
            assert_eq!(flight.run(|| None, || async { 7 }).await, Ok(7));
        });
    }

    /// The deadlock this module once had: a runtime that is shutting down drops the task
    /// inside `spawn`, and its guard locks the entry the caller still held.
    #[test]
    fn starting_on_a_runtime_that_is_shutting_down_does_not_deadlock() {
        let flight = Arc::new(SingleFlight::<u32>::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        drop(runtime);
        let _inside = handle.enter();
        flight.start(|| true, std::future::pending::<u32>);
        assert!(!flight.is_running(), "the dropped task cleared its entry");
        let joined = flight.join_or_start(None, || None, std::future::pending::<u32>);
        assert!(joined.is_ok());
        assert!(!flight.is_running());
    }

    #[test]
    fn a_caller_is_not_hostage_to_an_idle_runtime() {
        let flight = SingleFlight::<u32>::default();
        let idle = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Started on `idle`, which nobody drives afterwards: the job never runs.
        let parked = idle.block_on(async {
            flight
                .join_or_start(None, || None, || async { 1 })
                .unwrap_or_else(|_| unreachable!("nothing done"))
        });
        let live = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        live.block_on(async {
            assert!(matches!(parked.wait().await, Waited::Stalled(_)));
            assert_eq!(flight.run(|| None, || async { 2 }).await, Ok(2));
        });
        drop(idle);
    }

    #[tokio::test]
    async fn a_panicking_job_clears_its_entry() {
        let flight = SingleFlight::<u32>::default();
        let outcome = flight
            .run(|| None, || async { panic!("the job fails hard") })
            .await;
        assert_eq!(outcome, Err(Abandoned));
        assert!(!flight.is_running());
        assert_eq!(flight.run(|| None, || async { 3 }).await, Ok(3));
    }

    #[tokio::test]
    async fn a_need_met_meanwhile_starts_nothing() {
        let flight = SingleFlight::<u32>::default();
        let outcome = flight
            .run(|| Some(5), || async { unreachable!("already done") })
            .await;
        assert_eq!(outcome, Ok(5));
        flight.start(|| false, || async { unreachable!("no longer needed") });
        assert!(!flight.is_running());
    }
}
