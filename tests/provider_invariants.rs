//! A randomized invariant test of [`TokenProvider`]: proptest drives one provider (and the
//! provider for a second merchant derived from it, on the same cache) through random
//! interleavings of callers (`token()`, `cached_token()`, `refresh()`), 401s
//! (`token_after_rejection` and `invalidate_token` with a token a caller got), a second
//! runtime that goes idle or is dropped mid-fetch, clock jumps, and an upstream that
//! fails, lies, hangs or is slow; and checks the invariants ARCHITECTURE.md and the
//! provider's docs state: on every token as it is handed out, and on the server's record of
//! requests at the end of each case.
//!
//! ```sh
//! cargo test --all-features --test provider_invariants               # 64 cases
//! PROPTEST_CASES=2000 cargo test --all-features --test provider_invariants
//! PROVIDER_INVARIANTS_IGNORE=expired,rate cargo test ...   # to see the next failure
//! ```
//!
//! # Clocks
//!
//! Everything runs on tokio's paused clock; nothing sleeps for real.
//!
//! - The main runtime is current-thread and paused, and the upstream
//!   (`support/scripted_upstream.rs`) runs on it. Its answers travel over loopback within
//!   one thread (the kernel queues loopback bytes at once, and a task the I/O driver wakes
//!   keeps a current-thread runtime's paused clock from advancing), so the clock never
//!   jumps while an answer is on its way: it moves only when every task waits for a timer
//!   (the client's timeout, a retry's backoff, a scripted delay), or when the test moves
//!   it.
//! - The second runtime ("elsewhere") is current-thread and paused too (tokio pauses only
//!   those). Each runtime has its own clock, and a token's expiry is counted on the clock
//!   of the runtime that fetched it, so the clocks are kept as one world clock: main's is
//!   put a day ahead at the start (ahead of any runtime made later), a runtime entered is
//!   first advanced to the world's time, and the time it spent is then added to main's
//!   (main stood still meanwhile: for its callers that is a clock jump). So every
//!   `Instant` compared here, the server's issue times included, is on the world clock.
//! - While "elsewhere" runs, main does not, and the reverse: a fetch started elsewhere is
//!   on a runtime that runs no tasks once its caller gives up (its `block_on` returned),
//!   which is what the stall check in `single_flight.rs` exists for.
//!
//! # Invariants
//!
//! Each has a name (for `PROVIDER_INVARIANTS_IGNORE`):
//!
//! - `expired`: no token handed out (by `token`, `refresh`, `token_after_rejection` or
//!   `cached_token`) is expired by its own `is_expired()`;
//! - `expired_upstream`: nor by the upstream's clock (sent + `expires_in`);
//! - `margin`: nor is it in its last `expiry_margin` (at most a tenth of its life), where
//!   the docs of [`RefreshPolicy`] say it is never handed out: not even straight from a
//!   fetch whose answer took that long, or whose runtime stood still, or across a clock
//!   jump while the answer was on its way;
//! - `wrong_key`: a token goes only to callers of the merchant it was fetched for (by the
//!   server's record and by its `Merchant-Serial-Number` header); `unknown_token`: and
//!   only tokens the server issued;
//! - `rejected_again`: `token_after_rejection` never hands back the token refused;
//! - `deadline`: no caller on main waits longer than the client's budget (its timeout plus
//!   the retry policy's `max_total`) plus the stall checks (four runs, 350 ms each, see
//!   `single_flight.rs`) plus a second (a caller that gets one more fetch after a token
//!   arrived too late had waited under half a second for the first): each caller on main
//!   is wrapped in a timeout of
//!   that (one elsewhere is cut off by its own, shorter, patience). Time a clock jump skips is not counted as waiting: a jump fires every timer
//!   up to its end at once, the caller's among them, so its deadline is pushed back by the
//!   jumps made while it waited (the stall checks a jump cut short still need their time);
//! - `interrupted`: no `Error::Interrupted` for a caller whose own runtime is alive (every
//!   caller here: main's always are, and one elsewhere is while its `block_on` runs);
//! - `panic`: nothing panics (a panic hook counts panics on any thread or task);
//! - `secret_in_error`: no error's `Display` or `Debug` holds the client secret, the
//!   subscription key or a token;
//! - `in_flight`: at most one token request per merchant is open at the server at a time,
//!   plus two per switch of runtime so far (a stall detected elsewhere, then one back on
//!   main: ARCHITECTURE.md accepts one extra request per stall);
//! - `rate`: a bound on fetches per merchant in any window of `W` = the larger of
//!   `retry_interval` and `forced_refresh_interval` (5 s) that does not grow with the number
//!   of callers. Requests are grouped into fetches (a request after a transient failure,
//!   within the retry policy's attempts and `max_total`, is that fetch's retry). A fetch
//!   starts for one of these reasons, and each is bounded in a window: the first fetch (1);
//!   a fetch after a failed one (1: no sooner than `retry_interval` after it, as a failed
//!   background refresh already waits); a 401 forcing a refresh (1 per
//!   `forced_refresh_interval`); a token reaching its refresh time (1 for the token cached
//!   when the window opens, plus 1 for each token issued within a window of it); an explicit
//!   `refresh()` or `invalidate_token()` within a window of it (1 each); a switch of runtime
//!   so far (2 each, as above). Without a cached token, the provider shares a failure for
//!   a wait that grows with each failure in a row (`RefreshPolicy::failure_backoff`)
//!   instead of fetching for every call; a token that arrived too late to hand out is
//!   fetched again at most once, and counts as a token issued.
//!
//! A case is up to 47 steps and takes milliseconds; 64 cases take a few seconds. Failures
//! are not saved to a regressions file: proptest prints the minimal case, whose `seed`
//! also fixes the provider's jitter (`fastrand` is seeded per case; everything runs on one
//! thread), and the minimal cases found so far are pinned in the second test below.

#[path = "support/example_keys.rs"]
mod example_keys;
#[path = "support/scripted_upstream.rs"]
mod scripted_upstream;
#[path = "support/token_body.rs"]
mod token_body;

use std::{
    cell::Cell,
    collections::HashSet,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, Once},
    time::{Duration, Instant as StdInstant},
};

use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use tokio::{runtime::Runtime, task::JoinHandle, time::Instant};
use vipps_access_token::{
    AccessToken, ClientBuilder, Error, RefreshPolicy, RetryPolicy, StandardCredentials,
    TokenProvider, TokenSource,
};

use example_keys::{CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_KEY};
use scripted_upstream::{Answer, Ending, Reply, Running, Upstream};

// --- The provider under test: the one place that builds it. ---

/// The client's timeout for a whole request (the crate's default).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn refresh_policy() -> RefreshPolicy {
    RefreshPolicy::default()
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
}

/// The provider for merchant A and the one derived from it for merchant B (same cache).
///
/// The client is the one `ClientBuilder` makes from the crate's `http_client_builder`, as
/// a service's would be: it keeps no idle connection (and so no idle timer; a pooled
/// connection's task would run on the runtime that opened it) and follows no redirect.
/// Its timeouts stay on: the upstream runs on the same paused runtime, so they fire only
/// when the upstream hangs (see "Clocks"), which is what the `deadline` bound counts on.
fn build_providers(base_url: &str) -> [TokenProvider; 2] {
    let client = ClientBuilder::with_base_url(base_url)
        .merchant_serial_number(Key::A.msn())
        .retry_policy(retry_policy())
        .http_client_builder(vipps_access_token::http_client_builder().expect("TLS set up"))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("a valid client");
    let source = TokenSource::Standard(StandardCredentials::new(
        CLIENT_ID,
        CLIENT_SECRET,
        SUBSCRIPTION_KEY,
    ));
    let a = TokenProvider::builder(client, source)
        .refresh_policy(refresh_policy())
        .expect("a valid policy")
        .build();
    let b = a
        .with_merchant_serial_number(Key::B.msn())
        .expect("a valid MSN");
    [a, b]
}

/// The longest a caller may wait: the client's budget (the last attempt starts within
/// `max_total` and lasts at most the timeout), the stall checks of up to four runs
/// (`STALL_CHECK_AFTER` + `STALL_CHECK_TIMEOUT`, `ATTEMPTS` in `single_flight.rs`), and a
/// second to spare.
fn caller_deadline() -> Duration {
    CLIENT_TIMEOUT
        + retry_policy().max_total
        + 4 * Duration::from_millis(350)
        + Duration::from_secs(1)
}

/// The window of the `rate` bound.
fn rate_window() -> Duration {
    let policy = refresh_policy();
    policy.retry_interval.max(policy.forced_refresh_interval)
}

// --- What a case is made of. ---

/// A merchant: each has its own cached token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    A,
    B,
}

impl Key {
    fn msn(self) -> &'static str {
        match self {
            Self::A => "123456",
            Self::B => "654321",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Token,
    Refresh,
}

#[derive(Clone, Debug)]
enum Step {
    /// A caller on main, left to run for `yields` turns.
    Call { key: Key, call: Call, yields: u8 },
    /// A caller on main, waited for: the next step comes after its answer.
    Await { key: Key, call: Call },
    /// Steady traffic: `callers` callers of `token()` on main, one after the other, `gap`
    /// apart, each waited for.
    Traffic {
        key: Key,
        callers: u8,
        gap: Duration,
    },
    /// `cached_token()`, checked at once.
    Peek { key: Key },
    /// An API answered 401 to a token a caller of `key` got (the `pick`-th newest):
    /// `token_after_rejection`, as a caller on main.
    Rejected { key: Key, pick: u8 },
    /// `invalidate_token` with a token a caller of `key` got.
    Invalidate { key: Key, pick: u8 },
    /// The next requests get these answers.
    Script(Vec<Answer>),
    /// Tokens answered when the script is empty last this long from now on.
    Lifetime(u64),
    /// The clock jumps: every timer up to its end fires at once.
    Jump(Duration),
    /// Time passes with everything running (timers fire in order).
    Sleep(Duration),
    /// Tasks run; time stands still.
    Yield(u8),
    /// A caller on the second runtime that gives up after `patience`: then its `block_on`
    /// returns, and the runtime, with whatever fetch it started, stops running tasks.
    Elsewhere {
        key: Key,
        call: Call,
        patience: Duration,
    },
    /// The second runtime runs again for a while.
    Resume(Duration),
    /// The second runtime is dropped, with its tasks.
    DropElsewhere,
}

#[derive(Clone, Debug)]
struct Case {
    /// Seeds `fastrand`: the refresh jitter and the retry backoff.
    seed: u64,
    /// The lifetime of tokens answered when the script is empty, at first.
    lifetime: u64,
    steps: Vec<Step>,
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![3 => Just(Key::A), 1 => Just(Key::B)]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![4 => Just(Call::Token), 1 => Just(Call::Refresh)]
}

fn lifetime() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![5u64, 60, 900, 3600])
}

/// Mostly short, some beyond a token's life.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        4 => (0u64..2_000).prop_map(Duration::from_millis),
        3 => (2u64..120).prop_map(Duration::from_secs),
        1 => (120u64..4 * 3600).prop_map(Duration::from_secs),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    let reply = prop_oneof![
        2 => lifetime().prop_map(|lifetime_secs| Reply::Token { lifetime_secs }),
        1 => Just(Reply::Token { lifetime_secs: 0 }),
        2 => Just(Reply::Unavailable),
        2 => Just(Reply::InvalidClient),
        1 => Just(Reply::NotAToken),
    ];
    let delay = prop_oneof![
        4 => Just(Duration::ZERO),
        2 => (1u64..20_000).prop_map(Duration::from_millis),
        // A hang: longer than the client waits.
        1 => (1u64..60).prop_map(|secs| CLIENT_TIMEOUT + Duration::from_secs(secs)),
    ];
    (reply, delay).prop_map(|(reply, delay)| Answer { reply, delay })
}

/// Answers that are no usable token, at once.
fn failure() -> impl Strategy<Value = Answer> {
    prop_oneof![
        Just(Reply::Unavailable),
        Just(Reply::InvalidClient),
        Just(Reply::NotAToken),
        Just(Reply::Token { lifetime_secs: 0 }),
    ]
    .prop_map(|reply| Answer {
        reply,
        delay: Duration::ZERO,
    })
}

fn script() -> impl Strategy<Value = Vec<Answer>> {
    prop_oneof![
        2 => prop::collection::vec(answer(), 1..4),
        // An outage: the same answer many times.
        1 => (answer(), 2usize..24).prop_map(|(answer, times)| vec![answer; times]),
        1 => (failure(), 4usize..24).prop_map(|(answer, times)| vec![answer; times]),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (key(), call(), 0u8..4).prop_map(|(key, call, yields)| Step::Call { key, call, yields }),
        4 => (key(), call()).prop_map(|(key, call)| Step::Await { key, call }),
        2 => (key(), 2u8..12, (0u64..1_000).prop_map(Duration::from_millis))
            .prop_map(|(key, callers, gap)| Step::Traffic { key, callers, gap }),
        2 => key().prop_map(|key| Step::Peek { key }),
        2 => (key(), any::<u8>()).prop_map(|(key, pick)| Step::Rejected { key, pick }),
        1 => (key(), any::<u8>()).prop_map(|(key, pick)| Step::Invalidate { key, pick }),
        3 => script().prop_map(Step::Script),
        1 => lifetime().prop_map(Step::Lifetime),
        2 => duration().prop_map(Step::Jump),
        3 => duration().prop_map(Step::Sleep),
        3 => (1u8..8).prop_map(Step::Yield),
        2 => (key(), call(), (1u64..5_000).prop_map(Duration::from_millis))
            .prop_map(|(key, call, patience)| Step::Elsewhere { key, call, patience }),
        1 => (0u64..2_000).prop_map(|ms| Step::Resume(Duration::from_millis(ms))),
        1 => Just(Step::DropElsewhere),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        lifetime(),
        prop::collection::vec(step(), 1..48),
    )
        .prop_map(|(seed, lifetime, steps)| Case {
            seed,
            lifetime,
            steps,
        })
}

// --- The log the checks write to. ---

/// What happened in a case that the invariants need, on the world clock.
struct Log {
    /// The world's time when the case began.
    origin: StdInstant,
    /// Invariant names to leave unchecked.
    ignored: HashSet<String>,
    violations: Vec<String>,
    /// Tokens handed to callers, per key, newest last.
    handed_out: [Vec<Arc<AccessToken>>; 2],
    /// Clock jumps: from when, by how much.
    jumps: Vec<(StdInstant, Duration)>,
    /// `refresh()` and `invalidate_token()` calls, per key.
    explicit: [Vec<StdInstant>; 2],
    /// Switches to the second runtime (a call, a resume or a drop there).
    switches: Vec<StdInstant>,
    stats: Stats,
}

#[derive(Clone, Copy, Debug)]
struct Stats {
    calls: usize,
    tokens: usize,
    errors: usize,
    gave_up: usize,
    excused: usize,
    requests: usize,
}

impl Stats {
    const ZERO: Self = Self {
        calls: 0,
        tokens: 0,
        errors: 0,
        gave_up: 0,
        excused: 0,
        requests: 0,
    };
}

impl Log {
    fn violate(&mut self, invariant: &str, detail: String) {
        if !self.ignored.contains(invariant) {
            self.violations.push(format!("[{invariant}] {detail}"));
        }
    }

    fn at(&self, instant: StdInstant) -> String {
        format!(
            "t={:.3}s",
            instant.saturating_duration_since(self.origin).as_secs_f64()
        )
    }
}

/// Checks outcomes as they happen; cheap to clone into caller tasks.
#[derive(Clone)]
struct Checker {
    log: Arc<Mutex<Log>>,
    upstream: Arc<Upstream>,
}

/// Where a caller runs.
#[derive(Clone, Copy, Debug)]
enum Place {
    Main,
    Elsewhere,
}

/// What a caller asks for.
#[derive(Clone)]
enum What {
    Token,
    Refresh,
    AfterRejection(Arc<AccessToken>),
}

impl What {
    fn name(&self) -> &'static str {
        match self {
            Self::Token => "token()",
            Self::Refresh => "refresh()",
            Self::AfterRejection(_) => "token_after_rejection()",
        }
    }
}

async fn ask(provider: &TokenProvider, what: &What) -> Result<Option<Arc<AccessToken>>, Error> {
    match what {
        What::Token => provider.token().await.map(Some),
        What::Refresh => provider.refresh().await.map(Some),
        What::AfterRejection(rejected) => Ok(provider.token_after_rejection(rejected).await),
    }
}

/// Now on the current runtime's clock, as the world's time.
fn world_now() -> StdInstant {
    Instant::now().into_std()
}

impl Checker {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A caller's outcome, checked on its own runtime.
    fn outcome(
        &self,
        place: Place,
        key: Key,
        what: &What,
        outcome: Result<Option<Arc<AccessToken>>, Error>,
    ) {
        let now = world_now();
        let who = format!("{} on {place:?} for merchant {key:?}", what.name());
        match outcome {
            Ok(Some(token)) => {
                if let What::AfterRejection(rejected) = what
                    && rejected.secret().expose_secret() == token.secret().expose_secret()
                {
                    let mut log = self.log();
                    let at = log.at(now);
                    log.violate(
                        "rejected_again",
                        format!("{at}: {who} handed back the token refused"),
                    );
                }
                self.handout(&who, key, &token);
            }
            Ok(None) => {}
            Err(error) => self.error(&who, &error),
        }
    }

    /// A token handed to a caller of `key`, checked on the caller's runtime.
    fn handout(&self, who: &str, key: Key, token: &Arc<AccessToken>) {
        let now = world_now();
        let secret = token.secret().expose_secret();
        let issued = self.upstream.issued(secret);
        let mut log = self.log();
        log.stats.tokens += 1;
        let at = log.at(now);
        let life = token.expires_in();
        if token.is_expired() {
            log.violate(
                "expired",
                format!(
                    "{at}: {who} got {secret} (expires_in {}s) expired {:.3}s ago",
                    life.as_secs(),
                    now.saturating_duration_since(token.expires_at_instant())
                        .as_secs_f64()
                ),
            );
        }
        let margin = refresh_policy().expiry_margin.min(life / 10);
        if token
            .expires_at_instant()
            .checked_sub(margin)
            .is_none_or(|usable_until| now >= usable_until)
        {
            log.violate(
                "margin",
                format!(
                    "{at}: {who} got {secret} (expires_in {}s) within its last {:.1}s",
                    life.as_secs(),
                    margin.as_secs_f64()
                ),
            );
        }
        match issued {
            None => log.violate(
                "unknown_token",
                format!("{at}: {who} got a token the server never issued"),
            ),
            Some(issued) => {
                if issued.msn != key.msn() {
                    log.violate(
                        "wrong_key",
                        format!(
                            "{at}: {who} got {secret}, issued for merchant {}",
                            issued.msn
                        ),
                    );
                }
                let expiry = issued.issued_at.into_std() + issued.lifetime;
                if now >= expiry {
                    let late = now.saturating_duration_since(expiry).as_secs_f64();
                    log.violate(
                        "expired_upstream",
                        format!(
                            "{at}: {who} got {secret} (expires_in {}s), expired by the server's clock {late:.3}s ago",
                            issued.lifetime.as_secs()
                        ),
                    );
                }
            }
        }
        let header = token
            .headers()
            .get("merchant-serial-number")
            .and_then(|value| value.to_str().ok());
        if header != Some(key.msn()) {
            log.violate(
                "wrong_key",
                format!("{at}: {who} got a token whose Merchant-Serial-Number is {header:?}"),
            );
        }
        log.handed_out[key.index()].push(token.clone());
    }

    fn error(&self, who: &str, error: &Error) {
        let shown = format!("{error} {error:?}");
        let mut log = self.log();
        log.stats.errors += 1;
        let at = log.at(world_now());
        if matches!(error, Error::Interrupted) {
            log.violate(
                "interrupted",
                format!("{at}: {who} got Error::Interrupted while its runtime is alive"),
            );
        }
        let leaked = [CLIENT_SECRET, SUBSCRIPTION_KEY, "token-"]
            .into_iter()
            .any(|secret| shown.contains(secret));
        if leaked {
            log.violate(
                "secret_in_error",
                format!("{at}: {who} got an error that shows a secret"),
            );
        }
    }

    /// How much clock jumps skipped since `since`.
    fn jumped_since(&self, since: StdInstant) -> Duration {
        let log = self.log();
        log.jumps
            .iter()
            .filter(|&&(from, _)| from >= since)
            .map(|&(_, by)| by)
            .sum()
    }

    /// Awaits `call` until its deadline, pushed back by the clock jumps made meanwhile;
    /// `None` (and a violation) when it is still waiting then.
    async fn within_deadline<T>(&self, who: &str, call: impl Future<Output = T>) -> Option<T> {
        let started = world_now();
        let mut deadline = started + caller_deadline();
        tokio::pin!(call);
        loop {
            match tokio::time::timeout_at(Instant::from_std(deadline), &mut call).await {
                Ok(outcome) => return Some(outcome),
                Err(_) => {
                    let pushed_back = started + caller_deadline() + self.jumped_since(started);
                    if pushed_back > deadline {
                        self.log().stats.excused += 1;
                        deadline = pushed_back;
                        continue;
                    }
                    let mut log = self.log();
                    let at = log.at(started);
                    log.violate(
                        "deadline",
                        format!(
                            "{who}, called at {at}, still waited after {:?} (not counting clock jumps)",
                            caller_deadline()
                        ),
                    );
                    return None;
                }
            }
        }
    }
}

// --- Running a case. ---

/// A current-thread runtime on a paused clock.
fn paused_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
}

/// Advances the current runtime's clock to `to`, if it is behind.
async fn catch_up(to: StdInstant) {
    let behind = to.saturating_duration_since(world_now());
    if !behind.is_zero() {
        tokio::time::advance(behind).await;
    }
}

async fn turns(yields: u8) {
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
}

struct World {
    providers: [TokenProvider; 2],
    checker: Checker,
    /// Keeps the server accepting.
    server: Running,
    callers: Vec<(String, JoinHandle<()>)>,
    elsewhere: Option<Runtime>,
}

impl World {
    async fn start(lifetime: u64, ignored: HashSet<String>) -> Self {
        // A day ahead of the real clock, and so of any runtime made later.
        tokio::time::advance(Duration::from_secs(86_400)).await;
        let server = Upstream::start(lifetime).await;
        let checker = Checker {
            log: Arc::new(Mutex::new(Log {
                origin: world_now(),
                ignored,
                violations: Vec::new(),
                handed_out: Default::default(),
                jumps: Vec::new(),
                explicit: Default::default(),
                switches: Vec::new(),
                stats: Stats::ZERO,
            })),
            upstream: server.upstream.clone(),
        };
        Self {
            providers: build_providers(&server.upstream.base_url()),
            checker,
            server,
            callers: Vec::new(),
            elsewhere: None,
        }
    }

    fn provider(&self, key: Key) -> TokenProvider {
        self.providers[key.index()].clone()
    }

    /// The `pick`-th newest token handed to a caller of `key`.
    fn picked(&self, key: Key, pick: u8) -> Option<Arc<AccessToken>> {
        let log = self.checker.log();
        let tokens = &log.handed_out[key.index()];
        let newest = tokens.len().checked_sub(1)?;
        tokens
            .get(newest - usize::from(pick) % tokens.len())
            .cloned()
    }

    fn note_explicit(&self, key: Key, at: StdInstant) {
        self.checker.log().explicit[key.index()].push(at);
    }

    /// Spawns a caller on main (inside `main.block_on`).
    fn spawn_caller(&mut self, key: Key, what: What) {
        let provider = self.provider(key);
        let checker = self.checker.clone();
        checker.log().stats.calls += 1;
        if matches!(what, What::Refresh) {
            self.note_explicit(key, world_now());
        }
        let who = format!("{} on Main for merchant {key:?}", what.name());
        let task = tokio::spawn({
            let who = who.clone();
            async move {
                if let Some(outcome) = checker.within_deadline(&who, ask(&provider, &what)).await {
                    checker.outcome(Place::Main, key, &what, outcome);
                }
            }
        });
        self.callers.push((who, task));
    }

    /// Moves main's clock to `to` (the time spent elsewhere): a jump for main's callers.
    async fn catch_up_main(&self, to: StdInstant) {
        let now = world_now();
        if to > now {
            self.checker.log().jumps.push((now, to - now));
            tokio::time::advance(to - now).await;
        }
    }

    /// The world's time, read on main (whose tasks get a turn).
    fn now_on(main: &Runtime) -> StdInstant {
        main.block_on(async { world_now() })
    }

    fn step(&mut self, main: &Runtime, step: &Step) {
        match step {
            Step::Call { key, call, yields } => main.block_on(async {
                let what = match call {
                    Call::Token => What::Token,
                    Call::Refresh => What::Refresh,
                };
                self.spawn_caller(*key, what);
                turns(*yields).await;
            }),
            Step::Await { key, call } => main.block_on(async {
                let what = match call {
                    Call::Token => What::Token,
                    Call::Refresh => What::Refresh,
                };
                self.spawn_caller(*key, what);
                if let Some(caller) = self.callers.pop() {
                    self.join(caller).await;
                }
            }),
            Step::Traffic { key, callers, gap } => main.block_on(async {
                for _ in 0..*callers {
                    self.spawn_caller(*key, What::Token);
                    if let Some(caller) = self.callers.pop() {
                        self.join(caller).await;
                    }
                    tokio::time::sleep(*gap).await;
                }
            }),
            Step::Peek { key } => main.block_on(async {
                if let Some(token) = self.provider(*key).cached_token() {
                    let who = format!("cached_token() on Main for merchant {key:?}");
                    self.checker.handout(&who, *key, &token);
                }
            }),
            Step::Rejected { key, pick } => {
                if let Some(rejected) = self.picked(*key, *pick) {
                    main.block_on(async {
                        self.spawn_caller(*key, What::AfterRejection(rejected));
                        turns(1).await;
                    });
                }
            }
            Step::Invalidate { key, pick } => {
                if let Some(token) = self.picked(*key, *pick) {
                    main.block_on(async {
                        self.note_explicit(*key, world_now());
                        self.provider(*key).invalidate_token(&token);
                    });
                }
            }
            Step::Script(answers) => self.server.upstream.script(answers.iter().copied()),
            Step::Lifetime(secs) => self.server.upstream.set_default_lifetime(*secs),
            Step::Jump(by) => main.block_on(async {
                self.checker.log().jumps.push((world_now(), *by));
                tokio::time::advance(*by).await;
            }),
            Step::Sleep(for_) => main.block_on(async { tokio::time::sleep(*for_).await }),
            Step::Yield(yields) => main.block_on(turns(*yields)),
            Step::Elsewhere {
                key,
                call,
                patience,
            } => {
                let now = Self::now_on(main);
                self.checker.log().switches.push(now);
                let what = match call {
                    Call::Token => What::Token,
                    Call::Refresh => {
                        self.note_explicit(*key, now);
                        What::Refresh
                    }
                };
                let provider = self.provider(*key);
                let checker = self.checker.clone();
                checker.log().stats.calls += 1;
                let runtime = self.elsewhere.get_or_insert_with(paused_runtime);
                let (key, patience) = (*key, *patience);
                let after = runtime.block_on(async move {
                    catch_up(now).await;
                    match tokio::time::timeout(patience, ask(&provider, &what)).await {
                        Ok(outcome) => checker.outcome(Place::Elsewhere, key, &what, outcome),
                        Err(_) => checker.log().stats.gave_up += 1,
                    }
                    world_now()
                });
                main.block_on(self.catch_up_main(after));
            }
            Step::Resume(for_) => {
                let now = Self::now_on(main);
                if let Some(runtime) = &self.elsewhere {
                    self.checker.log().switches.push(now);
                    let after = runtime.block_on(async {
                        catch_up(now).await;
                        tokio::time::sleep(*for_).await;
                        world_now()
                    });
                    main.block_on(self.catch_up_main(after));
                }
            }
            Step::DropElsewhere => {
                if let Some(runtime) = self.elsewhere.take() {
                    let now = Self::now_on(main);
                    self.checker.log().switches.push(now);
                    drop(runtime);
                }
            }
        }
    }

    /// Waits for every caller on main (each is bounded by its deadline).
    async fn settle(&mut self) {
        for caller in std::mem::take(&mut self.callers) {
            self.join(caller).await;
        }
    }

    /// Waits for one caller on main; a panic in it is a violation.
    async fn join(&self, (who, caller): (String, JoinHandle<()>)) {
        if let Err(error) = caller.await
            && error.is_panic()
        {
            let mut log = self.checker.log();
            log.violate("panic", format!("{who} panicked"));
        }
    }

    /// The bounds on upstream requests, from the server's records.
    fn check_requests(&self) {
        let served = self.server.upstream.served();
        let mut log = self.checker.log();
        log.stats.requests += served.len();
        for key in [Key::A, Key::B] {
            let mine: Vec<_> = served.iter().filter(|s| s.msn == key.msn()).collect();
            // In flight at each arrival.
            for request in &mine {
                let open = mine
                    .iter()
                    .filter(|other| {
                        other.arrival_seq <= request.arrival_seq
                            && other.end_seq.is_none_or(|end| end > request.arrival_seq)
                    })
                    .count();
                let arrived = request.arrived_at.into_std();
                let switches = log.switches.iter().filter(|&&s| s <= arrived).count();
                let allowed = 1 + 2 * switches;
                if open > allowed {
                    let at = log.at(arrived);
                    log.violate(
                        "in_flight",
                        format!(
                            "{at}: {open} token requests for merchant {key:?} open at once (allowed {allowed}: {switches} runtime switches so far)"
                        ),
                    );
                }
            }
            // Requests grouped into fetches.
            let retry = retry_policy();
            let mut starts: Vec<StdInstant> = Vec::new();
            let mut chain: Option<(StdInstant, u32)> = None;
            let mut previous_transient = false;
            for request in &mine {
                let arrived = request.arrived_at.into_std();
                let is_retry = previous_transient
                    && chain.is_some_and(|(first, attempts)| {
                        attempts < retry.max_attempts
                            && arrived.saturating_duration_since(first) <= retry.max_total
                    });
                chain = match chain {
                    Some((first, attempts)) if is_retry => Some((first, attempts + 1)),
                    _ => {
                        starts.push(arrived);
                        Some((arrived, 1))
                    }
                };
                previous_transient = match request.ending {
                    Some(Ending::Answered(reply)) => reply.is_transient(),
                    Some(Ending::ClientLeft) | None => true,
                };
            }
            let issued: Vec<StdInstant> = mine
                .iter()
                .filter(|s| matches!(s.ending, Some(Ending::Answered(Reply::Token { .. }))))
                .map(|s| s.arrived_at.into_std())
                .collect();
            let window = rate_window();
            for &from in &starts {
                let until = from + window;
                let within = |at: &&StdInstant| **at >= from && **at < until;
                let near = |at: &&StdInstant| {
                    at.checked_add(window).is_some_and(|end| end > from) && **at < until
                };
                let fetches = starts.iter().filter(within).count();
                let tokens = issued.iter().filter(near).count();
                let explicit = log.explicit[key.index()].iter().filter(near).count();
                let switches = log.switches.iter().filter(|&&s| s < until).count();
                // First fetch, after a failure, forced by a 401, the token cached at `from`.
                let allowed = 4 + tokens + explicit + 2 * switches;
                // The first window over the bound says it; the next ones would repeat it.
                if fetches > allowed {
                    let at = log.at(from);
                    log.violate(
                        "rate",
                        format!(
                            "{at}: {fetches} fetches for merchant {key:?} within {window:?} (allowed {allowed}: {tokens} tokens issued, {explicit} refresh/invalidate calls, {switches} runtime switches)"
                        ),
                    );
                    break;
                }
            }
        }
    }
}

thread_local! {
    /// Panics on this thread, counted by a hook that then calls the default one. A case
    /// runs all its runtimes on the test's thread, so each test counts only its own.
    static PANICS: Cell<usize> = const { Cell::new(0) };
    /// Cases, steps and what happened in them, for the summary line.
    static TOTALS: Cell<(usize, usize, Stats)> = const { Cell::new((0, 0, Stats::ZERO)) };
}

fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.set(PANICS.get() + 1);
            default(info);
        }));
    });
}

/// Invariants left unchecked, from `PROVIDER_INVARIANTS_IGNORE` (comma-separated).
fn ignored() -> HashSet<String> {
    std::env::var("PROVIDER_INVARIANTS_IGNORE")
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

fn run_case(case: &Case) -> Result<(), TestCaseError> {
    fastrand::seed(case.seed);
    let panics_before = PANICS.get();
    let main = paused_runtime();
    let mut world = main.block_on(World::start(case.lifetime, ignored()));
    for step in &case.steps {
        world.step(&main, step);
    }
    main.block_on(world.settle());
    drop(world.elsewhere.take());
    world.check_requests();
    let panics = PANICS.get() - panics_before;
    let (violations, stats) = {
        let mut log = world.checker.log();
        if panics > 0 {
            log.violate("panic", format!("{panics} panic(s): see the output above"));
        }
        (std::mem::take(&mut log.violations), log.stats)
    };
    drop(world);
    drop(main);
    {
        let (cases, steps, mut sum) = TOTALS.get();
        sum.calls += stats.calls;
        sum.tokens += stats.tokens;
        sum.errors += stats.errors;
        sum.gave_up += stats.gave_up;
        sum.excused += stats.excused;
        sum.requests += stats.requests;
        TOTALS.set((cases + 1, steps + case.steps.len(), sum));
    }
    if violations.is_empty() {
        return Ok(());
    }
    let shown = violations.len().min(12);
    Err(TestCaseError::fail(format!(
        "{} violation(s):\n{}",
        violations.len(),
        violations[..shown].join("\n")
    )))
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn the_provider_keeps_its_invariants_under_random_interleavings() {
    count_panics();
    let mut runner = TestRunner::new(config());
    let result = runner.run(&case(), |case| run_case(&case));
    let totals = TOTALS.get();
    eprintln!(
        "provider_invariants: {} cases run (shrinking included), {} steps, {:?}",
        totals.0, totals.1, totals.2
    );
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// The minimal cases proptest found on main, kept so that each fix is checked against
/// them on every run (proptest's own regression file is off: these say what they are).
#[test]
fn the_minimal_failing_cases_found_so_far_hold() {
    count_panics();
    let answer = |reply, delay| Answer { reply, delay };
    let token_call = |key| Step::Call {
        key,
        call: Call::Token,
        yields: 0,
    };
    let cases = [
        (
            "a 200 with expires_in 0 is handed to the caller waiting for it",
            vec![
                Step::Script(vec![answer(
                    Reply::Token { lifetime_secs: 0 },
                    Duration::ZERO,
                )]),
                token_call(Key::A),
            ],
        ),
        (
            "an answer slower than the token's life less its margin is handed out",
            vec![
                Step::Script(vec![answer(
                    Reply::Token { lifetime_secs: 5 },
                    Duration::from_millis(4_500),
                )]),
                token_call(Key::A),
            ],
        ),
        (
            "a fetch whose runtime stood still past the token's life hands it out expired",
            vec![
                token_call(Key::A),
                Step::Elsewhere {
                    key: Key::A,
                    call: Call::Token,
                    patience: Duration::from_millis(1),
                },
                Step::Elsewhere {
                    key: Key::A,
                    call: Call::Token,
                    patience: Duration::from_millis(3_754),
                },
                Step::Resume(Duration::from_millis(1_242)),
            ],
        ),
        (
            "a clock jump while the answer is on its way hands the token out late",
            vec![
                Step::Script(vec![answer(
                    Reply::Token { lifetime_secs: 5 },
                    Duration::from_secs(1),
                )]),
                token_call(Key::A),
                Step::Sleep(Duration::from_millis(500)),
                Step::Jump(Duration::from_millis(4_200)),
            ],
        ),
        (
            "refresh() hands out a token whose answer took its usable life",
            vec![
                Step::Script(vec![answer(
                    Reply::Token { lifetime_secs: 5 },
                    Duration::from_millis(4_600),
                )]),
                Step::Await {
                    key: Key::A,
                    call: Call::Refresh,
                },
            ],
        ),
        (
            "token_after_rejection hands out a token that arrived after a clock jump",
            vec![
                Step::Lifetime(3600),
                Step::Await {
                    key: Key::A,
                    call: Call::Token,
                },
                Step::Script(vec![answer(
                    Reply::Token { lifetime_secs: 5 },
                    Duration::from_secs(1),
                )]),
                Step::Rejected {
                    key: Key::A,
                    pick: 0,
                },
                Step::Sleep(Duration::from_millis(500)),
                Step::Jump(Duration::from_millis(4_200)),
            ],
        ),
        (
            "with no token cached and the keys refused, every caller makes a request",
            vec![
                Step::Script(vec![answer(Reply::InvalidClient, Duration::ZERO); 5]),
                Step::Traffic {
                    key: Key::A,
                    callers: 5,
                    gap: Duration::ZERO,
                },
            ],
        ),
    ];
    let mut failed = Vec::new();
    for (what, steps) in cases {
        let case = Case {
            seed: 0,
            lifetime: 5,
            steps,
        };
        if let Err(error) = run_case(&case) {
            failed.push(format!("{what}:\n{error}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
