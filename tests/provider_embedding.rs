//! TokenProvider embedded the way services and test suites embed it: kept in a `static` and
//! used from many `#[tokio::test]`s (each with its own runtime), runtimes shut down while a
//! fetch or a background refresh is in flight, callers that give up or panic mid-wait. None
//! of it may leave the provider stuck or cost an extra upstream request.
#![cfg(feature = "mock")]

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use tokio::runtime::Runtime;
use vipps_access_token::{
    RefreshPolicy, TokenProvider, TokenSource,
    mock::{MockServer, STANDARD_TOKEN_PATH},
};

/// A mock on a runtime of its own, so that it outlives every runtime a test drops.
struct DetachedMock {
    server: MockServer,
    runtime: Option<Runtime>,
}

impl Drop for DetachedMock {
    /// Without waiting: it may be dropped inside an async test, where blocking is refused.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl DetachedMock {
    /// Started from a thread of its own, so that it can be started from inside a runtime.
    fn start() -> Self {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let server = runtime.block_on(MockServer::start()).unwrap();
            Self {
                server,
                runtime: Some(runtime),
            }
        })
        .join()
        .unwrap()
    }

    fn provider(&self, policy: RefreshPolicy) -> TokenProvider {
        let client = self.server.client_builder().build().unwrap();
        TokenProvider::with_policy(
            client,
            TokenSource::Standard(self.server.standard_credentials()),
            policy,
        )
        .expect("a valid policy")
    }

    fn token_requests(&self) -> u64 {
        self.server.requests_to(STANDARD_TOKEN_PATH)
    }

    /// Waits (polling, on the current runtime) until `n` token requests have arrived.
    async fn until_token_requests(&self, n: u64) {
        let waited = tokio::time::timeout(Duration::from_secs(20), async {
            while self.token_requests() < n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{n} token requests never arrived");
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// --- A provider in a static, used by several tests, each on its own runtime. ---

static SHARED_MOCK: OnceLock<DetachedMock> = OnceLock::new();
static SHARED_PROVIDER: OnceLock<TokenProvider> = OnceLock::new();

fn shared_provider() -> (&'static DetachedMock, &'static TokenProvider) {
    let mock = SHARED_MOCK.get_or_init(DetachedMock::start);
    let provider = SHARED_PROVIDER.get_or_init(|| mock.provider(RefreshPolicy::default()));
    (mock, provider)
}

async fn a_test_using_the_static_provider() {
    let (mock, provider) = shared_provider();
    let token = provider
        .token()
        .await
        .expect("a token on every test's runtime");
    assert!(
        mock.server
            .verify_token(token.secret().expose_secret())
            .is_some()
    );
    assert_eq!(mock.token_requests(), 1, "one fetch for all the tests");
}

#[tokio::test]
async fn static_provider_first_test() {
    a_test_using_the_static_provider().await;
}

#[tokio::test]
async fn static_provider_second_test() {
    a_test_using_the_static_provider().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_provider_third_test() {
    a_test_using_the_static_provider().await;
}

// --- Runtimes dropped mid-fetch. ---

#[test]
fn a_fetch_whose_runtime_shut_down_is_replaced_on_the_next_call() {
    let mock = DetachedMock::start();
    let provider = mock.provider(RefreshPolicy::default());
    mock.server.set_delay(Duration::from_secs(3600));

    let first = runtime();
    first.block_on(async {
        let waiting = tokio::spawn({
            let provider = provider.clone();
            async move { provider.token().await }
        });
        mock.until_token_requests(1).await;
        drop(waiting);
    });
    drop(first);
    mock.server.clear_faults();

    let second = runtime();
    second.block_on(async {
        let token = provider
            .token()
            .await
            .expect("a new fetch, not a stuck one");
        assert!(!token.is_expired());
        provider.refresh().await.expect("refresh works too");
    });
    assert_eq!(mock.token_requests(), 3, "the abandoned one, then one each");
}

#[test]
fn a_background_refresh_whose_runtime_shut_down_does_not_wedge() {
    let mock = DetachedMock::start();
    let provider = mock.provider(RefreshPolicy::default());

    let first = runtime();
    let original = first.block_on(async {
        let original = provider.token().await.unwrap();
        mock.server.set_delay(Duration::from_secs(3600));
        // Due for a refresh at once: the next call starts a background refresh. (A policy
        // can no longer make every token due at once: a token is fresh for a tenth of its
        // life at least.)
        provider.invalidate();
        let served = provider.token().await.unwrap();
        assert!(Arc::ptr_eq(&served, &original), "served while refreshing");
        mock.until_token_requests(2).await;
        original
    });
    drop(first);
    mock.server.clear_faults();

    let second = runtime();
    second.block_on(async {
        let refreshed = provider.refresh().await.expect("a fresh refresh");
        assert!(!Arc::ptr_eq(&refreshed, &original));
        let served = provider.token().await.unwrap();
        assert_ne!(
            served.secret().expose_secret(),
            original.secret().expose_secret()
        );
    });
}

#[test]
fn a_provider_outlives_many_runtimes_with_one_request() {
    let mock = DetachedMock::start();
    let provider = mock.provider(RefreshPolicy::default());
    for _ in 0..5 {
        runtime().block_on(async { provider.token().await.unwrap() });
    }
    assert_eq!(mock.token_requests(), 1);
}

// --- Callers on a live runtime, while the runtime that started the fetch does not run. ---

/// A bound far above the fetch time plus the stall check (well under a second here): only
/// a caller held hostage reaches it.
const HOSTAGE: Duration = Duration::from_secs(5);

fn multi_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Ten callers on `live` get a token from one replacement fetch, within [`HOSTAGE`].
fn served_on_a_live_runtime(mock: &DetachedMock, provider: &TokenProvider) {
    multi_thread_runtime().block_on(async {
        let callers: Vec<_> = (0..10)
            .map(|_| {
                let provider = provider.clone();
                tokio::spawn(async move { tokio::time::timeout(HOSTAGE, provider.token()).await })
            })
            .collect();
        for caller in callers {
            let token = caller
                .await
                .unwrap()
                .expect("served within the fetch time plus the stall check, not held hostage")
                .expect("a token");
            assert!(
                mock.server
                    .verify_token(token.secret().expose_secret())
                    .is_some()
            );
        }
    });
    assert_eq!(
        mock.token_requests(),
        2,
        "the stalled fetch, then one replacement for all the callers"
    );
}

#[test]
fn a_caller_is_not_hostage_to_an_idle_runtime() {
    let mock = DetachedMock::start();
    let provider = mock.provider(RefreshPolicy::default());
    mock.server.set_delay(Duration::from_millis(200));

    // A current-thread runtime starts the fetch, and its `block_on` returns: the caller
    // gave up. The runtime lives on, driven by nobody.
    let idle = runtime();
    idle.block_on(async {
        let gave_up = tokio::time::timeout(Duration::from_millis(20), provider.token()).await;
        assert!(gave_up.is_err());
        mock.until_token_requests(1).await;
    });

    served_on_a_live_runtime(&mock, &provider);
    drop(idle);
}

#[test]
fn a_caller_is_not_hostage_to_a_blocked_runtime() {
    let mock = DetachedMock::start();
    let provider = mock.provider(RefreshPolicy::default());
    mock.server.set_delay(Duration::from_millis(200));

    let (blocked, blocks) = std::sync::mpsc::channel();
    let (unblock, unblocked) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        // Dropped on the way out, also when an assertion fails: the blocked thread then ends.
        let unblock = unblock;
        // A current-thread runtime starts the fetch, then its only thread blocks.
        let (mock, provider) = (&mock, &provider);
        scope.spawn(move || {
            runtime().block_on(async {
                tokio::spawn({
                    let provider = provider.clone();
                    async move { provider.token().await }
                });
                mock.until_token_requests(1).await;
                blocked.send(()).unwrap();
                unblocked.recv().ok();
            })
        });
        blocks.recv().unwrap();
        served_on_a_live_runtime(mock, provider);
        drop(unblock);
    });
}

// --- Callers that give up or panic while they wait. ---

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_leaves_the_fetch_to_finish_for_the_next() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_secs(5));
    let provider = TokenProvider::new(
        mock.client_builder().build().unwrap(),
        TokenSource::Standard(mock.standard_credentials()),
    );

    let gave_up = tokio::time::timeout(Duration::from_millis(10), provider.token()).await;
    assert!(gave_up.is_err(), "the caller's own timeout fired first");
    let token = provider.token().await.expect("the same fetch, finished");
    assert!(mock.verify_token(token.secret().expose_secret()).is_some());
    assert_eq!(mock.requests_to(STANDARD_TOKEN_PATH), 1);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_panics_mid_wait_breaks_nothing() {
    let mock = MockServer::start().await.unwrap();
    mock.set_delay(Duration::from_secs(5));
    let provider = TokenProvider::new(
        mock.client_builder().build().unwrap(),
        TokenSource::Standard(mock.standard_credentials()),
    );

    let caller = tokio::spawn({
        let provider = provider.clone();
        async move {
            let waiting = provider.token();
            let _ = tokio::time::timeout(Duration::ZERO, waiting).await;
            panic!("a bug in the caller, while it waited for a token");
        }
    });
    assert!(caller.await.unwrap_err().is_panic());
    provider.token().await.expect("the provider is unharmed");
    assert_eq!(mock.requests_to(STANDARD_TOKEN_PATH), 1);
}

// --- Single flight under many racing cold starts. ---

/// A fetch that ends just as a late caller looks must not make that caller start a second
/// one: the look and the start are decided together. Rare per cold start, so many of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_cold_starts_make_one_request_each() {
    // The mock answers from its own runtime, so late callers are still arriving when
    // the fetch ends.
    let mock = DetachedMock::start();
    let client = mock.server.client_builder().build().unwrap();
    const COLD_STARTS: u64 = 300;
    for _ in 0..COLD_STARTS {
        let provider = TokenProvider::new(
            client.clone(),
            TokenSource::Standard(mock.server.standard_credentials()),
        );
        let callers: Vec<_> = (0..1000)
            .map(|_| {
                let provider = provider.clone();
                tokio::spawn(async move { provider.token().await })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap().unwrap();
        }
    }
    assert_eq!(mock.token_requests(), COLD_STARTS);
}
