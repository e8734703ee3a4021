//! [`Session`]: the client a command talks to (starting the mock for `--env mock`), and the
//! `--timeout` that bounds everything it asks. Shared by the token commands, `conformance`
//! and `doctor`.

use vipps_access_token::{
    AccessToken, Client, ClientBuilder, Environment, Error, RetryPolicy, SystemHeaders,
    mock::MockServer,
};

use crate::{
    args::{CallerArgs, Env, Target},
    failure::{Failure, UNAVAILABLE, USAGE},
    output, progress,
};

/// A client, the mock it calls when `--env mock` started one, and the `--timeout` that
/// bounds everything it asks.
pub struct Session {
    pub client: Client,
    pub mock: Option<MockServer>,
    pub deadline: std::time::Duration,
}

impl Session {
    pub async fn open(
        target: &Target,
        caller: &CallerArgs,
        partner_token_path: Option<&str>,
    ) -> Result<Self, Failure> {
        let (base_url, mock) = match base_url(target) {
            Some(url) => (url, None),
            None => {
                let mock = MockServer::start().await.map_err(|error| {
                    Failure::new(USAGE, format!("could not start the mock: {error}"))
                })?;
                (mock.base_url().to_owned(), Some(mock))
            }
        };
        Ok(Self {
            client: client(base_url, target, caller, partner_token_path)?,
            mock,
            deadline: target.timeout,
        })
    }

    /// Awaits `request` within `--timeout` in all, retries included.
    pub async fn within_deadline<T>(
        &self,
        request: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.deadline, request).await {
            Ok(result) => result.map_err(Failure::from),
            Err(_) => Err(Failure::new(
                UNAVAILABLE,
                format!(
                    "no answer from {} within --timeout {} s (retries included): check the \
                     base URL and the network, or give more time",
                    self.client.base_url(),
                    self.deadline.as_secs_f64()
                ),
            )),
        }
    }

    /// Waits for `request`, showing progress when it is slow, then prints the token.
    pub async fn finish(
        &self,
        request: impl Future<Output = Result<AccessToken, Error>>,
        output: crate::args::Output,
    ) -> Result<(), Failure> {
        let request = self.within_deadline(request);
        let token = progress::while_waiting(self.client.base_url(), request).await?;
        output::print(&token, output);
        Ok(())
    }
}

/// Where `target` points: `--base-url`, else the environment's; `None` for `--env mock`,
/// whose URL exists once the mock runs.
pub fn base_url(target: &Target) -> Option<String> {
    match (&target.base_url, target.env_or(Env::Test)) {
        (Some(url), _) => Some(url.clone()),
        (None, Env::Test) => Some(Environment::Test.base_url().to_owned()),
        (None, Env::Production) => Some(Environment::Production.base_url().to_owned()),
        (None, Env::Mock) => None,
    }
}

/// The client for `base_url` with the command's settings. Building it opens nothing: the
/// HTTP client under it is made at the first request.
pub fn client(
    base_url: String,
    target: &Target,
    caller: &CallerArgs,
    partner_token_path: Option<&str>,
) -> Result<Client, Failure> {
    refuse_plain_http(&base_url, "--base-url")?;
    let mut builder = ClientBuilder::with_base_url(base_url)
        .timeout(target.timeout)
        .system_headers(SystemHeaders {
            name: caller.system_name.clone(),
            version: caller.system_version.clone(),
            plugin_name: caller.system_plugin_name.clone(),
            plugin_version: caller.system_plugin_version.clone(),
        });
    if let Some(msn) = &caller.msn {
        builder = builder.merchant_serial_number(msn);
    }
    builder = builder.retry_policy(RetryPolicy {
        max_attempts: target.retries.saturating_add(1),
        max_total: target.timeout.min(RetryPolicy::default().max_total),
        ..RetryPolicy::default()
    });
    if let Some(path) = partner_token_path {
        builder = builder.partner_token_path(path);
    }
    Ok(builder.build()?)
}

/// `--base-url` over plain http to another machine: refused in the CLI's own words (the
/// library's error names a builder setting the CLI does not offer).
pub fn refuse_plain_http(base_url: &str, flag: &str) -> Result<(), Failure> {
    let Ok(url) = url::Url::parse(base_url) else {
        return Ok(()); // the client's checks say what is wrong with it
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => true,
    };
    if url.scheme() == "http" && !loopback {
        return Err(Failure::usage(format!(
            "{flag} must use https: the credentials travel in headers. Plain http is \
             accepted on this machine only (127.0.0.1, ::1, localhost), for a local mock"
        )));
    }
    Ok(())
}
