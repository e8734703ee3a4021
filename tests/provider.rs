//! TokenProvider: single flight, refresh ahead, failures, invalidation and keys, counted
//! in upstream requests against a wiremock server on loopback. Expiry is driven with
//! tokio's paused time: no test sleeps.

#[path = "support/token_body.rs"]
mod token_body;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use token_body::standard_token_body;

use vipps_access_token::{
    AccessToken, Client, ClientBuilder, Error, PartnerCredentials, RefreshPolicy, RetryPolicy,
    StandardCredentials, TokenProvider, TokenSource,
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

#[path = "support/example_keys.rs"]
mod example_keys;
use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
#[path = "support/scripted_upstream.rs"]
mod scripted_upstream;
use scripted_upstream::{Answer, Reply, Running, Upstream};

/// Issues `token-1`, `token-2`, ... valid for `expires_in` seconds; answers with
/// `failure` instead while `failing` is set.
#[derive(Clone)]
struct Issuer {
    issued: Arc<AtomicUsize>,
    failing: Arc<AtomicUsize>,
    expires_in: u64,
}

impl Issuer {
    fn new(expires_in: u64) -> Self {
        Self {
            issued: Arc::default(),
            failing: Arc::default(),
            expires_in,
        }
    }

    /// The next `n` requests get a 500.
    fn fail_next(&self, n: usize) {
        self.failing.store(n, Ordering::SeqCst);
    }
}

impl Respond for Issuer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self
            .failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return ResponseTemplate::new(500);
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let msn = request
            .headers
            .get("merchant-serial-number")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        ResponseTemplate::new(200).set_body_json(standard_token_body(
            &format!("token-{n}-msn-{msn}"),
            self.expires_in.to_string(),
        ))
    }
}

/// Answers like the wrapped responder, 100 ms late (wiremock's own clock).
struct Slow(Issuer);

impl Respond for Slow {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0
            .respond(request)
            .set_delay(Duration::from_millis(100))
    }
}

async fn server_with(issuer: &Issuer) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/accesstoken/get"))
        .respond_with(issuer.clone())
        .mount(&server)
        .await;
    server
}

/// A client for `server`. No timeouts: under paused time a pending timer would fire at
/// once while the runtime waits on the loopback socket. No retries: each upstream
/// request counted here is one fetch.
#[allow(deprecated)] // ClientBuilder::http_client; ClientBuilder::without_timeouts replaces it
fn client(server: &MockServer) -> Client {
    ClientBuilder::with_base_url(server.uri())
        .merchant_serial_number("123456")
        .retry_policy(RetryPolicy::none())
        .http_client(
            // No timers of its own (the pool's idle timeout is one): under a paused clock,
            // tokio jumps to the next timer while wiremock's thread answers.
            vipps_access_token::http_client_builder()
                .expect("TLS set up")
                .pool_idle_timeout(None)
                .build()
                .expect("a reqwest client"),
        )
        .build()
        .expect("a valid client")
}

fn standard_source() -> TokenSource {
    TokenSource::Standard(StandardCredentials::new(
        CLIENT_ID,
        CLIENT_SECRET,
        SUBSCRIPTION_KEY,
    ))
}

/// No jitter, so that the timeline is exact: refresh with 20 % of the life left.
fn exact_policy() -> RefreshPolicy {
    RefreshPolicy {
        jitter_fraction: 0.0,
        ..RefreshPolicy::default()
    }
}

async fn upstream_requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

fn secret(token: &AccessToken) -> &str {
    token.secret().expose_secret()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_at_a_cold_start_make_one_request() {
    let issuer = Issuer::new(3600);
    let server = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/accesstoken/get"))
        // A slow server, so that every caller arrives while the one fetch is on the wire.
        .respond_with(Slow(issuer.clone()))
        .mount(&server)
        .await;
    let provider = TokenProvider::new(client(&server), standard_source());

    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let provider = provider.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                provider.token().await
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.expect("caller task").expect("a token"));
    }

    assert_eq!(upstream_requests(&server).await, 1);
    assert!(
        tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])),
        "every caller shares the one token"
    );
}

#[tokio::test(start_paused = true)]
async fn refreshes_ahead_while_callers_keep_the_valid_token() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let provider = TokenProvider::with_policy(client(&server), standard_source(), exact_policy())
        .expect("a valid policy");

    let first = provider.token().await.expect("first token");
    assert_eq!(secret(&first), "token-1-msn-123456");
    assert_eq!(upstream_requests(&server).await, 1);

    // Until 80 % of its life has passed, the token is served from the cache.
    tokio::time::advance(Duration::from_secs(2870)).await;
    for _ in 0..100 {
        assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &first));
    }
    assert_eq!(upstream_requests(&server).await, 1);

    // In the refresh window: callers get the old token at once, and one refresh starts.
    tokio::time::advance(Duration::from_secs(60)).await;
    for _ in 0..100 {
        assert!(
            Arc::ptr_eq(&provider.token().await.unwrap(), &first),
            "no caller waits for the refresh"
        );
    }
    let refreshed = provider.refresh().await.expect("the background refresh");
    assert_eq!(secret(&refreshed), "token-2-msn-123456");
    assert_eq!(
        upstream_requests(&server).await,
        2,
        "one refresh for all those callers"
    );
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &refreshed));
}

#[tokio::test(start_paused = true)]
async fn never_hands_out_a_token_in_its_last_seconds() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    // Refreshing ahead switched off: only the expiry margin is left.
    let policy = RefreshPolicy {
        refresh_fraction: 0.0,
        jitter_fraction: 0.0,
        ..RefreshPolicy::default()
    };
    let provider = TokenProvider::with_policy(client(&server), standard_source(), policy)
        .expect("a valid policy");
    let first = provider.token().await.unwrap();

    tokio::time::advance(Duration::from_secs(3569)).await;
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &first));
    tokio::time::advance(Duration::from_secs(1)).await;
    let second = provider.token().await.unwrap();
    assert_eq!(
        secret(&second),
        "token-2-msn-123456",
        "30 s before expiry a new token is fetched"
    );
    assert!(!second.is_expired());
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_old_token_until_it_expires() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let provider = TokenProvider::with_policy(client(&server), standard_source(), exact_policy())
        .expect("a valid policy");
    let first = provider.token().await.unwrap();

    issuer.fail_next(usize::MAX);
    tokio::time::advance(Duration::from_secs(2900)).await;
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &first));
    let failure = provider.refresh().await.expect_err("the refresh fails");
    assert_eq!(failure.status(), Some(500));
    assert_eq!(upstream_requests(&server).await, 2);

    // The old token is still served, the failure is on record, and the next attempt
    // waits for the retry interval instead of hammering the API on every call.
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &first));
    assert_eq!(
        provider.last_refresh_error().and_then(|e| e.status()),
        Some(500)
    );
    assert_eq!(upstream_requests(&server).await, 2);

    // Past its usable life the old token is never handed out: callers get the error.
    tokio::time::advance(Duration::from_secs(700)).await;
    let error = provider
        .token()
        .await
        .expect_err("no valid token and the API fails");
    assert!(matches!(error, Error::Api(_)));
    assert_eq!(upstream_requests(&server).await, 3);
}

#[tokio::test(start_paused = true)]
async fn errors_are_shared_only_for_a_short_wait() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let provider = TokenProvider::new(client(&server), standard_source());

    issuer.fail_next(1);
    assert_eq!(provider.token().await.unwrap_err().status(), Some(500));
    // Within the wait after a failure (1 s ± 20 %), callers share it.
    assert_eq!(provider.token().await.unwrap_err().status(), Some(500));
    assert_eq!(upstream_requests(&server).await, 1);
    tokio::time::advance(Duration::from_millis(1200)).await;
    let token = provider
        .token()
        .await
        .expect("the next call after the wait tries again");
    assert_eq!(secret(&token), "token-1-msn-123456");
    assert_eq!(upstream_requests(&server).await, 2);
    assert!(
        provider.last_refresh_error().is_none(),
        "a success clears the last error"
    );
}

#[tokio::test(start_paused = true)]
async fn invalidate_starts_a_new_token() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let provider = TokenProvider::new(client(&server), standard_source());
    let first = provider.token().await.unwrap();

    // Invalidating starts a refresh; `refresh()` waits for it. Invalidating a token that
    // is no longer cached does nothing.
    provider.invalidate();
    let second = provider.refresh().await.unwrap();
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &second));
    provider.invalidate_token(&first);
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &second));

    provider.invalidate_token(&second);
    let third = provider.refresh().await.unwrap();
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &third));
    assert_eq!(
        [secret(&first), secret(&second), secret(&third)],
        [
            "token-1-msn-123456",
            "token-2-msn-123456",
            "token-3-msn-123456"
        ]
    );
    assert_eq!(upstream_requests(&server).await, 3);
}

#[tokio::test(start_paused = true)]
async fn two_keys_never_share_a_token() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let merchant_a = TokenProvider::new(client(&server), standard_source());
    let merchant_b = merchant_a.with_merchant_serial_number("654321").unwrap();
    let other_keys = merchant_a.with_source(TokenSource::Standard(StandardCredentials::new(
        CLIENT_ID,
        "another-secret",
        SUBSCRIPTION_KEY,
    )));

    let a = merchant_a.token().await.unwrap();
    let b = merchant_b.token().await.unwrap();
    let c = other_keys.token().await.unwrap();
    assert!(secret(&a).ends_with("msn-123456"));
    assert!(secret(&b).ends_with("msn-654321"));
    assert!(secret(&c).ends_with("msn-123456"));
    assert_ne!(secret(&a), secret(&c));
    assert_eq!(upstream_requests(&server).await, 3);

    // Each key keeps its own cached token; a second provider on the same key shares it.
    let merchant_a_again = merchant_b.with_merchant_serial_number("123456").unwrap();
    assert!(Arc::ptr_eq(&merchant_a_again.token().await.unwrap(), &a));
    assert!(Arc::ptr_eq(&merchant_b.token().await.unwrap(), &b));
    assert_eq!(upstream_requests(&server).await, 3);
}

#[tokio::test(start_paused = true)]
async fn partner_tokens_refresh_ahead_of_their_fifteen_minutes() {
    let server = MockServer::start().await;
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/miami/v1/token"))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": format!("partner-{n}"),
                "token_type": "Bearer",
                "expires_in": 900,
            }))
        })
        .mount(&server)
        .await;
    let source = TokenSource::Partner {
        credentials: PartnerCredentials::new(CLIENT_ID, CLIENT_SECRET),
        scope: None,
    };
    let provider = TokenProvider::new(client(&server), source);
    let first = provider.token().await.unwrap();

    // With the default jitter the refresh starts with 20 % to 30 % of 900 s left.
    tokio::time::advance(Duration::from_secs(629)).await;
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &first));
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(92)).await;
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &first));
    let refreshed = provider.refresh().await.unwrap();
    assert_eq!(secret(&refreshed), "partner-2");
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

/// A 401 forces at most one refresh per key per `forced_refresh_interval`; a call refused
/// with an older token retries with the newer one, and a call refused with the newest one
/// inside the interval gets nothing to retry with.
#[tokio::test(start_paused = true)]
async fn refreshes_forced_by_401s_are_rate_limited_per_key() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let provider = TokenProvider::with_policy(client(&server), standard_source(), exact_policy())
        .expect("a valid policy");
    let interval = exact_policy().forced_refresh_interval;
    assert_eq!(interval, Duration::from_secs(5), "the documented default");

    let first = provider.token().await.unwrap();
    let second = provider
        .token_after_rejection(&first)
        .await
        .expect("a forced refresh");
    assert_eq!(secret(&second), "token-2-msn-123456");
    assert_eq!(upstream_requests(&server).await, 2);

    // Refused again within the interval: the 401 goes back, nothing is fetched.
    assert!(provider.token_after_rejection(&second).await.is_none());
    // A call that still held the first token retries with the second.
    let newer = provider.token_after_rejection(&first).await;
    assert_eq!(newer.as_deref().map(secret), Some("token-2-msn-123456"));
    assert_eq!(upstream_requests(&server).await, 2);
    assert!(
        Arc::ptr_eq(&provider.token().await.unwrap(), &second),
        "a rate-limited 401 leaves the cached token in place"
    );

    // After the interval, the next 401 may force a refresh again.
    tokio::time::advance(interval).await;
    let third = provider
        .token_after_rejection(&second)
        .await
        .expect("a forced refresh after the interval");
    assert_eq!(secret(&third), "token-3-msn-123456");
    assert_eq!(upstream_requests(&server).await, 3);
}

/// A token an API refused is suspect, not gone: while the forced refresh fails, every
/// other caller keeps getting it (it has most of its life left), and the refused caller
/// is told there is nothing newer, so it hands back the API's own 401.
#[tokio::test(start_paused = true)]
async fn a_failed_forced_refresh_keeps_serving_the_rejected_token() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let provider = TokenProvider::with_policy(client(&server), standard_source(), exact_policy())
        .expect("a valid policy");
    let first = provider.token().await.unwrap();

    issuer.fail_next(usize::MAX);
    let retry_with = provider.token_after_rejection(&first).await;
    assert!(retry_with.is_none(), "nothing newer: hand back the 401");
    assert_eq!(upstream_requests(&server).await, 2, "one forced refresh");
    for _ in 0..10 {
        assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &first));
    }
    assert_eq!(
        upstream_requests(&server).await,
        2,
        "the suspect token is served, not fetched again on every call"
    );
    assert_eq!(
        provider.last_refresh_error().and_then(|e| e.status()),
        Some(500)
    );
}

/// Other callers keep the suspect token while its replacement is on the wire: the refresh
/// a 401 forced does not make them wait.
#[tokio::test(start_paused = true)]
async fn invalidate_serves_the_old_token_until_its_replacement_exists() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let provider = TokenProvider::new(client(&server), standard_source());
    let first = provider.token().await.unwrap();

    issuer.fail_next(1);
    provider.invalidate();
    assert!(
        Arc::ptr_eq(&provider.token().await.unwrap(), &first),
        "served at once, while its replacement is fetched"
    );
    assert!(
        provider.refresh().await.is_err(),
        "the replacement (joined, not another request) failed"
    );
    assert!(
        Arc::ptr_eq(&provider.token().await.unwrap(), &first),
        "a failed replacement puts the suspect token back"
    );
    assert_eq!(upstream_requests(&server).await, 2);
}

/// Forced refreshes are limited per keys and endpoint, not per merchant: an API refusing
/// every token for 50 merchants costs one token request per interval, not 50.
#[tokio::test(start_paused = true)]
async fn forced_refreshes_are_limited_per_keys_not_per_merchant() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let first = TokenProvider::builder(client(&server), standard_source())
        .max_slots(4)
        .build();
    let mut forced = 0;
    for n in 0..50 {
        let merchant = first
            .with_merchant_serial_number(&format!("{}", 100_000 + n))
            .unwrap();
        let token = merchant.token().await.unwrap();
        if merchant.token_after_rejection(&token).await.is_some() {
            forced += 1;
        }
    }
    assert_eq!(
        forced, 1,
        "one forced refresh in the interval for all merchants"
    );
    assert_eq!(upstream_requests(&server).await, 50 + 1);
}

/// With no usable token, a failure is shared for a short, growing interval instead of
/// being fetched again on every call: 8 busy tasks against a failing endpoint make one
/// request, not hundreds.
#[tokio::test(start_paused = true)]
async fn failures_without_a_token_are_backed_off() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let provider = TokenProvider::new(client(&server), standard_source());
    issuer.fail_next(usize::MAX);

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let error = provider.token().await.expect_err("the endpoint fails");
                    assert_eq!(error.status(), Some(500), "the fetch's own error");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        upstream_requests(&server).await,
        1,
        "400 calls, one request"
    );

    // 1 s (±20 %) after the first failure, one caller tries again; then 2 s (±20 %).
    tokio::time::advance(Duration::from_millis(1200)).await;
    assert!(provider.token().await.is_err());
    assert!(provider.token().await.is_err());
    assert_eq!(upstream_requests(&server).await, 2);
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert!(provider.token().await.is_err());
    assert_eq!(upstream_requests(&server).await, 2, "the interval grew");
    tokio::time::advance(Duration::from_millis(1000)).await;
    assert!(provider.token().await.is_err());
    assert_eq!(upstream_requests(&server).await, 3);

    // An explicit refresh is not held back, and a success resets the interval.
    issuer.fail_next(0);
    let token = provider
        .refresh()
        .await
        .expect("an explicit refresh asks now");
    assert_eq!(secret(&token), "token-1-msn-123456");
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &token));
    assert_eq!(upstream_requests(&server).await, 4);
}

/// An interval too long to add to an `Instant` means "never again", not a panic.
#[tokio::test(start_paused = true)]
async fn an_endless_forced_refresh_interval_does_not_panic() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let policy = RefreshPolicy {
        forced_refresh_interval: Duration::MAX,
        ..exact_policy()
    };
    let provider = TokenProvider::with_policy(client(&server), standard_source(), policy)
        .expect("a valid policy");
    let first = provider.token().await.unwrap();
    let second = provider
        .token_after_rejection(&first)
        .await
        .expect("the first forced refresh");
    tokio::time::advance(Duration::from_secs(3000)).await;
    assert!(provider.token_after_rejection(&second).await.is_none());
    assert_eq!(upstream_requests(&server).await, 2);
}

/// A policy that cannot work is refused when the provider is given it, naming the field
/// (on main a NaN `refresh_fraction` cost 4 fetches a call and ended in `Interrupted`).
#[tokio::test(start_paused = true)]
async fn a_policy_that_cannot_work_is_refused_naming_its_field() {
    let issuer = Issuer::new(3600);
    let server = server_with(&issuer).await;
    let policy = RefreshPolicy {
        refresh_fraction: f64::NAN,
        ..exact_policy()
    };
    let error = TokenProvider::with_policy(client(&server), standard_source(), policy)
        .expect_err("a NaN fraction is refused");
    let Error::InvalidInput(invalid) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(invalid.field, "refresh_fraction");
    assert!(error.to_string().contains("0.0 to 0.9"), "{error}");
    let builder = TokenProvider::builder(client(&server), standard_source());
    assert!(builder.refresh_policy(policy).is_err());
    assert_eq!(upstream_requests(&server).await, 0);
}

// --- Tokens that arrive too late to hand out. ---
//
// Against the scripted upstream (`support/scripted_upstream.rs`), which runs on the
// test's own runtime: its delays pass on tokio's paused clock, as the provider's times do.

/// The scripted upstream on this runtime (tokens an hour long when its script is empty),
/// and a provider for it with the client a service would build (its timeouts only fire
/// when the upstream hangs, since the upstream shares the paused clock).
async fn scripted() -> (Running, TokenProvider) {
    let server = Upstream::start(3600).await;
    let client = ClientBuilder::with_base_url(server.upstream.base_url())
        .merchant_serial_number("123456")
        .retry_policy(RetryPolicy::none())
        .http_client_builder(vipps_access_token::http_client_builder().expect("TLS set up"))
        .build()
        .expect("a valid client");
    let provider = TokenProvider::with_policy(client, standard_source(), exact_policy())
        .expect("a valid policy");
    (server, provider)
}

/// A 5-second token (usable for 4.5 s: its margin is a tenth of its life), answered after
/// `delay`.
fn five_second_token(delay: Duration) -> Answer {
    Answer {
        reply: Reply::Token { lifetime_secs: 5 },
        delay,
    }
}

fn assert_arrived_late(outcome: Result<Arc<AccessToken>, Error>) {
    match outcome {
        Err(Error::ArrivedLate(late)) => {
            assert_eq!(late.lifetime, Duration::from_secs(5));
            assert_eq!(late.margin, Duration::from_millis(500));
            assert!(late.took >= Duration::from_millis(4_500), "{late:?}");
            let message = Error::ArrivedLate(late).to_string();
            assert!(message.contains("less than its margin left"), "{message}");
            assert!(message.contains("check the network"), "{message}");
            assert!(!message.contains("token-"), "no token in {message}");
        }
        other => panic!("expected Error::ArrivedLate, got {other:?}"),
    }
}

/// Lets the caller's request reach the upstream and the upstream start its delay.
async fn until_the_answer_is_on_its_way() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// An answer that took 4.5 s of a 5 s token's life is not handed out: its last half second
/// is its margin. The caller, who waited all that time, gets the error (not a second wait
/// as long), nothing is cached, and the next call fetches at once (a late answer starts no
/// failure backoff).
#[tokio::test(start_paused = true)]
async fn a_token_whose_answer_took_its_usable_life_is_not_handed_out() {
    let (server, provider) = scripted().await;
    server
        .upstream
        .script([five_second_token(Duration::from_millis(4_500))]);
    assert_arrived_late(provider.token().await);
    assert_eq!(server.upstream.served().len(), 1, "no second fetch");
    assert!(provider.cached_token().is_none(), "nothing cached");
    assert!(matches!(
        provider.last_refresh_error(),
        Some(Error::ArrivedLate(_))
    ));

    let next = provider.token().await.expect("the next call fetches again");
    assert_eq!(next.expires_in(), Duration::from_secs(3600));
    assert_eq!(server.upstream.served().len(), 2);
}

/// The same for `refresh()`.
#[tokio::test(start_paused = true)]
async fn refresh_does_not_hand_out_a_token_that_arrived_late() {
    let (server, provider) = scripted().await;
    server
        .upstream
        .script([five_second_token(Duration::from_millis(4_600))]);
    assert_arrived_late(provider.refresh().await);
    assert_eq!(server.upstream.served().len(), 1);
}

/// The clock jumps (a suspend) while the answer is on its way: the answer came quickly by
/// the server's reckoning, but the token is past its usable time when it arrives.
#[tokio::test(start_paused = true)]
async fn a_token_late_after_a_clock_jump_is_not_handed_out() {
    let (server, provider) = scripted().await;
    for call in ["token", "refresh"] {
        server
            .upstream
            .script([five_second_token(Duration::from_secs(1))]);
        let caller = tokio::spawn({
            let provider = provider.clone();
            async move {
                match call {
                    "token" => provider.token().await,
                    _ => provider.refresh().await,
                }
            }
        });
        until_the_answer_is_on_its_way().await;
        tokio::time::advance(Duration::from_millis(4_200)).await;
        assert_arrived_late(caller.await.expect("no panic"));
    }
    assert_eq!(server.upstream.served().len(), 2, "one request per call");
}

/// A fetch's runtime stands still (here: the thread runs another runtime for 5 s) while
/// its answer waits; when it runs again, the world's clock has moved on and the token is
/// past its usable time. The caller waiting on that runtime does not get it; neither does
/// the caller of the other runtime, who found the fetch stalled and gave up on its own.
#[test]
fn a_fetch_whose_runtime_stood_still_past_the_tokens_life_is_not_handed_out() {
    let paused = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime")
    };
    let main = paused();
    let (server, provider, caller) = main.block_on(async {
        // A day ahead of the real clock, so that the other runtime, made later, can catch up.
        tokio::time::advance(Duration::from_secs(86_400)).await;
        let (server, provider) = scripted().await;
        server
            .upstream
            .script([five_second_token(Duration::from_secs(1))]);
        let caller = tokio::spawn({
            let provider = provider.clone();
            async move { provider.token().await }
        });
        until_the_answer_is_on_its_way().await;
        (server, provider, caller)
    });
    let stood_still_from = main.block_on(async { tokio::time::Instant::now() });
    let other = paused();
    let stood_still_until = other.block_on(async {
        let behind = stood_still_from.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::advance(behind).await;
        let patience = Duration::from_secs(5);
        let gave_up = tokio::time::timeout(patience, provider.token()).await;
        assert!(gave_up.is_err(), "main runs no tasks: nothing answers");
        tokio::time::Instant::now()
    });
    let outcome = main.block_on(async {
        // Main runs again, with the world's time.
        tokio::time::advance(stood_still_until - stood_still_from).await;
        caller.await.expect("no panic")
    });
    assert_arrived_late(outcome);
    assert!(
        server.upstream.served().len() <= 2,
        "one request, and one from the other runtime once it found main stalled"
    );
    drop(other);
}

/// A caller that joined a fetch moments before its token arrived too late gets one more
/// fetch (it had not waited: what made the token late happened before it asked); the
/// caller that waited the whole time gets the error. One more fetch at most: if that one
/// is late too, so is the answer.
#[tokio::test(start_paused = true)]
async fn a_caller_that_joined_a_late_fetch_moments_ago_gets_one_more_fetch() {
    let (server, provider) = scripted().await;
    server.upstream.script([
        five_second_token(Duration::from_secs(6)),
        five_second_token(Duration::from_secs(6)),
    ]);
    let first = tokio::spawn({
        let provider = provider.clone();
        async move { provider.token().await }
    });
    tokio::time::sleep(Duration::from_millis(5_700)).await;
    let (first, late_joiner) = tokio::join!(first, provider.token());
    assert_arrived_late(first.expect("no panic"));
    assert_arrived_late(late_joiner);
    assert_eq!(
        server.upstream.served().len(),
        2,
        "one more fetch for the late joiner, not a loop"
    );

    // Once more, with an upstream that answers the second fetch at once.
    server
        .upstream
        .script([five_second_token(Duration::from_secs(6))]);
    let first = tokio::spawn({
        let provider = provider.clone();
        async move { provider.token().await }
    });
    tokio::time::sleep(Duration::from_millis(5_700)).await;
    let (first, late_joiner) = tokio::join!(first, provider.token());
    assert_arrived_late(first.expect("no panic"));
    let token = late_joiner.expect("the one more fetch succeeds");
    assert_eq!(token.expires_in(), Duration::from_secs(3600));
    assert_eq!(server.upstream.served().len(), 4);
    assert!(
        Arc::ptr_eq(&provider.token().await.unwrap(), &token),
        "cached"
    );
}

/// The refresh a 401 forces arrives too late (a clock jump while it was on its way): the
/// refused call gets the API's 401 back (`None`), not the late token, and the refused
/// token, still unexpired, is served meanwhile.
#[tokio::test(start_paused = true)]
async fn a_forced_refresh_that_arrives_late_is_not_handed_out() {
    let (server, provider) = scripted().await;
    let rejected = provider.token().await.unwrap();
    server
        .upstream
        .script([five_second_token(Duration::from_secs(1))]);
    let retry = tokio::spawn({
        let (provider, rejected) = (provider.clone(), rejected.clone());
        async move { provider.token_after_rejection(&rejected).await }
    });
    until_the_answer_is_on_its_way().await;
    tokio::time::advance(Duration::from_millis(4_200)).await;
    assert!(
        retry.await.expect("no panic").is_none(),
        "the API's 401, not the late token"
    );
    assert_eq!(server.upstream.served().len(), 2, "one forced refresh");
    assert!(matches!(
        provider.last_refresh_error(),
        Some(Error::ArrivedLate(_))
    ));
    assert!(Arc::ptr_eq(&provider.token().await.unwrap(), &rejected));
}

// --- The wait after failures, per keys and endpoint; policies that undo the limits. ---
//
// Against the scripted upstream on this runtime, so that paused time passes only when the
// callers sleep, not while an answer is on its way.

/// `n` answers refusing the keys (401 `invalid_client`), at once.
fn refusals(n: usize) -> Vec<Answer> {
    vec![
        Answer {
            reply: Reply::InvalidClient,
            delay: Duration::ZERO,
        };
        n
    ]
}

/// The scripted upstream, refusing the keys `refused` times, and a provider for merchant
/// 123456 keeping at most `max_slots` keys.
async fn refused_keys(max_slots: usize, refused: usize) -> (Running, TokenProvider) {
    let server = Upstream::start(3600).await;
    server.upstream.script(refusals(refused));
    let client = ClientBuilder::with_base_url(server.upstream.base_url())
        .merchant_serial_number("123456")
        .retry_policy(RetryPolicy::none())
        .http_client_builder(vipps_access_token::http_client_builder().expect("TLS set up"))
        .build()
        .expect("a valid client");
    let provider = TokenProvider::builder(client, standard_source())
        .max_slots(max_slots)
        .build();
    (server, provider)
}

/// 8 tasks each call `call(n)` (`n` counting every call of every task) every 5 ms of paused
/// time for 10 s; returns the token requests the upstream saw.
async fn requests_in_ten_seconds(
    server: &Running,
    call: impl Fn(usize) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync + 'static,
) -> usize {
    let call = Arc::new(call);
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (call, calls) = (call.clone(), calls.clone());
            tokio::spawn(async move {
                while tokio::time::Instant::now() < end {
                    call(calls.fetch_add(1, Ordering::Relaxed)).await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no panic");
    }
    server.upstream.served().len()
}

/// What one merchant alone costs against refused keys: a request at once, then after
/// about 1, 2 and 4 s (±20 %).
const ONE_MERCHANT_IN_TEN_SECONDS: usize = 5;

/// Refused keys fail for every merchant alike, so the wait after a failure is kept per
/// keys and endpoint: 200 merchants (handles kept, nothing evicted) cost what one does,
/// plus the fetches of the 8 callers that started together before the first failure. On
/// main: 795 requests in 10 s (a wait per merchant).
#[tokio::test(start_paused = true)]
async fn the_wait_after_failures_is_per_keys_not_per_merchant() {
    let (server, provider) = refused_keys(1024, 100_000).await;
    let alone = provider.clone();
    let one = requests_in_ten_seconds(&server, move |_| {
        let provider = alone.clone();
        Box::pin(async move { assert!(provider.token().await.is_err()) })
    })
    .await;
    assert!(one <= ONE_MERCHANT_IN_TEN_SECONDS, "one merchant: {one}");

    let (server, provider) = refused_keys(1024, 100_000).await;
    let merchants: Arc<Vec<TokenProvider>> = Arc::new(
        (0..200)
            .map(|n| {
                provider
                    .with_merchant_serial_number(&format!("{}", 200_000 + n))
                    .unwrap()
            })
            .collect(),
    );
    let many = requests_in_ten_seconds(&server, move |n| {
        let merchants = merchants.clone();
        Box::pin(async move { assert!(merchants[n % 200].token().await.is_err()) })
    })
    .await;
    eprintln!("refused keys, 10 s, 8 callers: one merchant {one} requests, 200 merchants {many}");
    assert!(
        many <= 8 + ONE_MERCHANT_IN_TEN_SECONDS,
        "200 merchants: {many} requests (one merchant: {one})"
    );
}

/// The same with a handle made per call and 8 slots, as a platform serving requests does:
/// slots are evicted all the time, and the wait is not evicted with them. On main: 15,997
/// requests in 10 s, one per call.
#[tokio::test(start_paused = true)]
async fn the_wait_after_failures_outlives_slot_eviction() {
    let (server, provider) = refused_keys(8, 100_000).await;
    let requests = requests_in_ten_seconds(&server, move |n| {
        let merchant = provider
            .with_merchant_serial_number(&format!("{}", 200_000 + n % 200))
            .unwrap();
        Box::pin(async move { assert!(merchant.token().await.is_err()) })
    })
    .await;
    eprintln!("refused keys, 10 s, 8 callers, a handle per call, 8 slots: {requests} requests");
    assert!(
        requests <= 8 + ONE_MERCHANT_IN_TEN_SECONDS,
        "{requests} requests"
    );

    // One merchant, its slot evicted by other merchants between its calls: 20 calls in
    // 200 ms, one request (on main: 20).
    let (server, provider) = refused_keys(8, 100_000).await;
    for round in 0..20 {
        let merchant = provider.with_merchant_serial_number("300000").unwrap();
        assert!(merchant.token().await.is_err());
        drop(merchant);
        for other in 0..16 {
            let other = provider
                .with_merchant_serial_number(&format!("{}", 400_000 + round * 16 + other))
                .unwrap();
            assert!(other.token().await.is_err());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(provider.cached_keys() <= 8);
    assert_eq!(
        server.upstream.served().len(),
        1,
        "one request for 340 calls"
    );
}

/// A success for any merchant of the keys ends the wait for all of them: the next call
/// of a merchant that failed moments ago asks again (on main it shared its own failure
/// until its own wait ran out).
#[tokio::test(start_paused = true)]
async fn a_success_for_any_merchant_ends_the_wait() {
    let (server, provider) = refused_keys(1024, 1).await;
    let other = provider.with_merchant_serial_number("654321").unwrap();
    assert!(provider.token().await.is_err());
    assert!(
        other.token().await.is_err(),
        "another merchant shares the failure"
    );
    assert_eq!(server.upstream.served().len(), 1);

    let token = other.refresh().await.expect("an explicit refresh asks now");
    assert_eq!(server.upstream.served().len(), 2);
    let mine = provider
        .token()
        .await
        .expect("the wait ended with the success");
    assert!(!Arc::ptr_eq(&mine, &token), "each merchant its own token");
    assert_eq!(server.upstream.served().len(), 3);
}

/// A 400 about one merchant's MSN (not linked to the keys) says nothing about the other
/// merchants of those keys: its wait is that merchant's alone. On main every new merchant
/// of the keys shared merchant 999999's refusal for the wait (20 of 20 refused, 1 request).
#[tokio::test(start_paused = true)]
async fn one_merchants_refusal_is_not_shared_with_other_merchants() {
    let (server, provider) = scripted().await;
    server.upstream.refuse_merchant("999999");
    let refused = provider.with_merchant_serial_number("999999").unwrap();
    let first = refused.token().await.expect_err("999999 is refused");
    assert!(
        matches!(&first, Error::Api(api) if api.status() == 400),
        "{first:?}"
    );
    for n in 0..20 {
        let merchant = provider
            .with_merchant_serial_number(&format!("{}", 200_000 + n))
            .unwrap();
        merchant
            .token()
            .await
            .unwrap_or_else(|e| panic!("merchant {n} got another merchant's refusal: {e}"));
    }
    assert_eq!(server.upstream.served().len(), 21, "one request a merchant");
    // 999999 still waits: its refusal is shared with its own calls.
    for _ in 0..20 {
        assert!(refused.token().await.is_err());
    }
    assert_eq!(server.upstream.served().len(), 21, "999999 waits");
}

/// Other merchants' successes do not end the wait of a merchant refused for its MSN: its
/// wait grows as if it were alone (requests at about 0, 1 and 3 s in 3 s). On main each
/// success reset the wait of the keys: 999999 asked again after every one (30 requests).
#[tokio::test(start_paused = true)]
async fn successes_of_other_merchants_do_not_end_a_refused_merchants_wait() {
    let (server, provider) = scripted().await;
    server.upstream.refuse_merchant("999999");
    let refused = provider.with_merchant_serial_number("999999").unwrap();
    for n in 0..30 {
        assert!(refused.token().await.is_err());
        let merchant = provider
            .with_merchant_serial_number(&format!("{}", 300_000 + n))
            .unwrap();
        merchant
            .refresh()
            .await
            .expect("other merchants are served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refusals = server
        .upstream
        .served()
        .iter()
        .filter(|served| served.msn == "999999")
        .count();
    assert!(refusals <= 3, "999999 asked {refusals} times in 3 s");
    // Its own success ends its wait.
    tokio::time::sleep(Duration::from_secs(60)).await;
    server.upstream.refuse_merchant("none");
    refused.token().await.expect("999999 is linked now");
    assert!(refused.token().await.is_ok());
}

fn refused_field(policy: RefreshPolicy) -> Option<&'static str> {
    let client = ClientBuilder::with_base_url("http://127.0.0.1:9")
        .build()
        .expect("a valid client");
    match TokenProvider::with_policy(client, standard_source(), policy) {
        Ok(_) => None,
        Err(Error::InvalidInput(invalid)) => Some(invalid.field),
        Err(other) => panic!("{other:?}"),
    }
}

/// `refresh_fraction: 1.0` made every call a token request (1,000 for 1,000 calls): the
/// fractions together may take at most 0.9 of a token's life, so that it is fresh for a
/// tenth of it at least. At the bound, 1,000 calls over 10 s of an hour-long token make
/// one request.
#[tokio::test(start_paused = true)]
async fn a_policy_that_leaves_a_token_no_fresh_time_is_refused() {
    let fractions = |refresh_fraction, jitter_fraction| RefreshPolicy {
        refresh_fraction,
        jitter_fraction,
        ..RefreshPolicy::default()
    };
    assert_eq!(refused_field(fractions(1.0, 0.0)), Some("refresh_fraction"));
    assert_eq!(refused_field(fractions(0.0, 1.0)), Some("jitter_fraction"));
    assert_eq!(refused_field(fractions(0.7, 0.3)), Some("refresh_fraction"));
    assert_eq!(refused_field(fractions(0.8, 0.2)), Some("refresh_fraction"));
    let client = ClientBuilder::with_base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let error = TokenProvider::with_policy(client, standard_source(), fractions(0.8, 0.2))
        .expect_err("refused");
    let message = error.to_string();
    assert!(
        message.contains("refresh_fraction") && message.contains("jitter_fraction"),
        "{message}"
    );
    assert!(message.contains("0.0 to 0.9"), "{message}");

    for (refresh_fraction, jitter_fraction) in [(0.8, 0.1), (0.9, 0.0), (0.0, 0.9)] {
        let server = Upstream::start(3600).await;
        let client = ClientBuilder::with_base_url(server.upstream.base_url())
            .retry_policy(RetryPolicy::none())
            .http_client_builder(vipps_access_token::http_client_builder().expect("TLS set up"))
            .build()
            .expect("a valid client");
        let policy = fractions(refresh_fraction, jitter_fraction);
        let provider =
            TokenProvider::with_policy(client, standard_source(), policy).expect("at the bound");
        for _ in 0..1000 {
            assert!(!provider.token().await.unwrap().is_expired());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            server.upstream.served().len(),
            1,
            "{refresh_fraction} + {jitter_fraction}"
        );
    }
}

/// Waits and intervals under a millisecond are refused, as the messages say ("use at
/// least a millisecond"; on main a zero `forced_refresh_interval` made 101 requests for
/// 100 refusals, and a 1 ns `failure_backoff` hundreds a second). At the bound, 1 ms,
/// they still limit the token endpoint.
#[tokio::test(start_paused = true)]
async fn waits_and_intervals_under_a_millisecond_are_refused() {
    let under = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
    ];
    for value in under {
        let cases = [
            (
                RefreshPolicy {
                    forced_refresh_interval: value,
                    ..RefreshPolicy::default()
                },
                "forced_refresh_interval",
            ),
            (
                RefreshPolicy {
                    failure_backoff: value,
                    max_failure_backoff: value,
                    ..RefreshPolicy::default()
                },
                "failure_backoff",
            ),
            (
                RefreshPolicy {
                    retry_interval: value,
                    ..RefreshPolicy::default()
                },
                "retry_interval",
            ),
        ];
        for (policy, field) in cases {
            assert_eq!(refused_field(policy), Some(field), "{field} = {value:?}");
        }
    }
    assert_eq!(
        refused_field(RefreshPolicy {
            failure_backoff: Duration::from_secs(2),
            max_failure_backoff: Duration::from_secs(1),
            ..RefreshPolicy::default()
        }),
        Some("max_failure_backoff")
    );
    let at_the_bound = RefreshPolicy {
        forced_refresh_interval: Duration::from_millis(1),
        failure_backoff: Duration::from_millis(1),
        max_failure_backoff: Duration::from_millis(1),
        retry_interval: Duration::from_millis(1),
        ..RefreshPolicy::default()
    };
    assert_eq!(refused_field(at_the_bound), None);

    // 100 refusals of a token by an API, back to back: one forced refresh.
    let server = Upstream::start(3600).await;
    let client = ClientBuilder::with_base_url(server.upstream.base_url())
        .retry_policy(RetryPolicy::none())
        .http_client_builder(vipps_access_token::http_client_builder().expect("TLS set up"))
        .build()
        .expect("a valid client");
    let provider =
        TokenProvider::with_policy(client, standard_source(), at_the_bound).expect("valid");
    let mut token = provider.token().await.unwrap();
    for _ in 0..100 {
        if let Some(newer) = provider.token_after_rejection(&token).await {
            token = newer;
        }
    }
    assert_eq!(server.upstream.served().len(), 2, "one forced refresh");
}
