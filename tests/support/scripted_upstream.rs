//! A token endpoint on loopback whose every answer the test scripts, for
//! `tests/provider_invariants.rs`.
//!
//! It runs on the runtime that starts it, so that under tokio's paused clock it answers
//! without the clock jumping (a server on another thread would let the clock race ahead to
//! the client's timeout while the answer is on its way). Each request takes the next
//! scripted [`Answer`] (a valid token when the script is empty), and the server keeps what
//! the invariants need: when each request arrived and ended (in order, on the server's
//! clock), for which `Merchant-Serial-Number`, and, for each token it issued, the merchant,
//! the time it was issued and its lifetime. Every answer closes its connection, so the
//! client pools none (see ARCHITECTURE.md on pooled connections of idle runtimes).
#![allow(dead_code)] // a helper for one test binary

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
    time::Instant,
};

use crate::token_body::standard_token_body;

/// What the server answers one request with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// 200 with a fresh token valid for this many seconds (`0` too).
    Token { lifetime_secs: u64 },
    /// 503 from the gateway: transient, retried.
    Unavailable,
    /// 401 `invalid_client` from Azure AD: the keys are refused, not retried.
    InvalidClient,
    /// 200 whose body is JSON but not a token.
    NotAToken,
    /// 400 `invalid_request` about the request's `Merchant-Serial-Number` (not linked to
    /// the keys): a refusal of that merchant only. Answered to the merchant given to
    /// [`Upstream::refuse_merchant`], whatever the script.
    MerchantRefused,
}

impl Reply {
    /// Whether the client retries after this answer.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Unavailable)
    }
}

/// A scripted answer: what, and how long the server waits before sending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// What to answer.
    pub reply: Reply,
    /// How long to wait first, on the server's (tokio) clock.
    pub delay: Duration,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server sent this answer.
    Answered(Reply),
    /// The client closed the connection before the answer (its timeout, or its runtime
    /// was dropped).
    ClientLeft,
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Served {
    /// Its `Merchant-Serial-Number` (empty when none was sent).
    pub msn: String,
    /// When it arrived, on the server's clock.
    pub arrived_at: Instant,
    /// Its place in the order of arrivals and endings.
    pub arrival_seq: u64,
    /// When it ended, in the same order; `None` while still open.
    pub end_seq: Option<u64>,
    /// How it ended; `None` while still open.
    pub ending: Option<Ending>,
}

/// A token the server issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The merchant it was issued for.
    pub msn: String,
    /// When the server sent it, on the server's clock.
    pub issued_at: Instant,
    /// `expires_in`.
    pub lifetime: Duration,
}

#[derive(Default)]
struct State {
    script: VecDeque<Answer>,
    default_lifetime_secs: u64,
    served: Vec<Served>,
    issued: HashMap<String, Issued>,
    next_seq: u64,
    refused_msn: Option<String>,
}

impl State {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

/// The scripted server.
pub struct Upstream {
    addr: SocketAddr,
    state: Mutex<State>,
}

/// Stops the accept loop when dropped.
pub struct Running {
    /// The server's state and script.
    pub upstream: Arc<Upstream>,
    accept: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Upstream {
    /// Listens on a free loopback port and serves on the current runtime.
    pub async fn start(default_lifetime_secs: u64) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let upstream = Arc::new(Self {
            addr: listener.local_addr().expect("a bound address"),
            state: Mutex::new(State {
                default_lifetime_secs,
                ..State::default()
            }),
        });
        let serving = upstream.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(stream));
            }
        });
        Running { upstream, accept }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next requests get `answers`, in order, after those already scripted.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state().script.extend(answers);
    }

    /// Every request for merchant `msn` from now on gets [`Reply::MerchantRefused`] at
    /// once, taking nothing from the script.
    pub fn refuse_merchant(&self, msn: &str) {
        self.state().refused_msn = Some(msn.to_owned());
    }

    /// The lifetime of the tokens issued when the script is empty.
    pub fn set_default_lifetime(&self, secs: u64) {
        self.state().default_lifetime_secs = secs;
    }

    /// The token `secret`, if this server issued it.
    pub fn issued(&self, secret: &str) -> Option<Issued> {
        self.state().issued.get(secret).cloned()
    }

    /// Every request so far, in order of arrival.
    pub fn served(&self) -> Vec<Served> {
        self.state().served.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn serve(self: Arc<Self>, mut stream: TcpStream) {
        let Some(head) = read_head(&mut stream).await else {
            return;
        };
        let msn = header(&head, "merchant-serial-number").unwrap_or_default();
        let (index, answer) = {
            let mut state = self.state();
            let refused = state.refused_msn.as_deref() == Some(msn.as_str());
            let scripted = if refused {
                Some(Answer {
                    reply: Reply::MerchantRefused,
                    delay: Duration::ZERO,
                })
            } else {
                state.script.pop_front()
            };
            let answer = scripted.unwrap_or(Answer {
                reply: Reply::Token {
                    lifetime_secs: state.default_lifetime_secs,
                },
                delay: Duration::ZERO,
            });
            let arrival_seq = state.seq();
            state.served.push(Served {
                msn: msn.clone(),
                arrived_at: Instant::now(),
                arrival_seq,
                end_seq: None,
                ending: None,
            });
            (state.served.len() - 1, answer)
        };
        if client_left_during(&mut stream, answer.delay).await {
            self.end(index, Ending::ClientLeft);
            return;
        }
        let (status, body) = {
            let mut state = self.state();
            let body = match answer.reply {
                Reply::Token { lifetime_secs } => {
                    let secret = format!("token-{}-msn-{msn}", state.issued.len() + 1);
                    let body = standard_token_body(&secret, lifetime_secs.to_string());
                    state.issued.insert(
                        secret,
                        Issued {
                            msn: msn.clone(),
                            issued_at: Instant::now(),
                            lifetime: Duration::from_secs(lifetime_secs),
                        },
                    );
                    body.to_string()
                }
                Reply::Unavailable => {
                    r#"{"statusCode":503,"message":"The service is temporarily unavailable."}"#
                        .to_owned()
                }
                Reply::InvalidClient => r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#.to_owned(),
                Reply::NotAToken => r#"{"status":"ok","message":"maintenance window"}"#.to_owned(),
                Reply::MerchantRefused => format!(
                    r#"{{"error":"invalid_request","error_description":"Merchant-Serial-Number {msn} is not connected to this client_id"}}"#
                ),
            };
            let status = match answer.reply {
                Reply::Token { .. } | Reply::NotAToken => "200 OK",
                Reply::Unavailable => "503 Service Unavailable",
                Reply::InvalidClient => "401 Unauthorized",
                Reply::MerchantRefused => "400 Bad Request",
            };
            (status, body)
        };
        // Ended before the bytes go out: the client may act on them at once.
        self.end(index, Ending::Answered(answer.reply));
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn end(&self, index: usize, ending: Ending) {
        let mut state = self.state();
        let seq = state.seq();
        let served = &mut state.served[index];
        served.end_seq = Some(seq);
        served.ending = Some(ending);
    }
}

/// The request line and headers (the standard flow sends no body), or `None` when the
/// client left first or sent more than 64 KiB of them.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Waits `delay`; true if the client closed the connection meanwhile.
async fn client_left_during(stream: &mut TcpStream, delay: Duration) -> bool {
    if delay.is_zero() {
        return false;
    }
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    let mut buffer = [0u8; 256];
    loop {
        tokio::select! {
            () = &mut sleep => return false,
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            },
        }
    }
}
