//! The keys to ask with: from flags or the environment (clap reads both), from stdin when
//! asked, and from the in-process mock for any key not given with `--env mock`.

use std::{
    io::{self, BufRead},
    sync::{Mutex, PoisonError},
};

use vipps_access_token::{PartnerCredentials, StandardCredentials, mock::MockServer};

use crate::{
    args::{KeyArgs, SubscriptionKeyArgs},
    failure::Failure,
};

/// The lines read from stdin so far, kept for the process: the warm path (`warm.rs`) and
/// then the command itself each read the same keys, and stdin can be read only once.
static READ_LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The lines of stdin, handed out in order to one reader of the keys.
struct Stdin {
    position: usize,
}

impl Stdin {
    fn new() -> Self {
        Self { position: 0 }
    }

    /// The next line of stdin, without its line ending; `what` names it in errors.
    fn next(&mut self, what: &str) -> Result<String, Failure> {
        let mut read = READ_LINES.lock().unwrap_or_else(PoisonError::into_inner);
        while read.len() <= self.position {
            let mut line = String::new();
            match io::stdin().lock().read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => read.push(line.trim_end_matches(['\n', '\r']).to_owned()),
                Err(error) => {
                    return Err(Failure::usage(format!(
                        "could not read the {what} from stdin: {error}"
                    )));
                }
            }
        }
        let line = read.get(self.position).cloned().unwrap_or_default();
        self.position += 1;
        if line.trim().is_empty() {
            return Err(Failure::usage(format!(
                "expected the {what} on a line of stdin"
            )));
        }
        Ok(line)
    }
}

/// The value given, or read from stdin when `from_stdin`, or the mock's, or an error
/// that says how to give it.
fn pick(
    given: Option<&String>,
    from_stdin: bool,
    stdin: &mut Stdin,
    mock: Option<&str>,
    what: &str,
    how: &str,
) -> Result<String, Failure> {
    if from_stdin {
        return stdin.next(what);
    }
    given
        .cloned()
        .or_else(|| mock.map(str::to_owned))
        .ok_or_else(|| Failure::usage(format!("no {what}: {how}, or use --env mock")))
}

/// Keys for the standard and legacy flows.
pub fn standard(
    keys: &KeyArgs,
    subscription_key: &SubscriptionKeyArgs,
    mock: Option<&MockServer>,
) -> Result<StandardCredentials, Failure> {
    let defaults = mock.map(MockServer::standard_credentials);
    let mut stdin = Stdin::new();
    let (client_id, client_secret) = pair(
        keys,
        &mut stdin,
        defaults
            .as_ref()
            .map(|d| (d.client_id.as_str(), d.client_secret.expose_secret())),
        "VIPPS_",
    )?;
    let subscription_key = pick(
        subscription_key.subscription_key.as_ref(),
        subscription_key.subscription_key_stdin,
        &mut stdin,
        defaults
            .as_ref()
            .map(|d| d.subscription_key.expose_secret()),
        "subscription key",
        "set VIPPS_SUBSCRIPTION_KEY, pass --subscription-key or --subscription-key-stdin",
    )?;
    Ok(StandardCredentials::new(
        client_id,
        client_secret,
        subscription_key,
    ))
}

/// Keys for the partner flow, from `VIPPS_PARTNER_CLIENT_ID` and `_SECRET` (or the flags).
pub fn partner(keys: &KeyArgs, mock: Option<&MockServer>) -> Result<PartnerCredentials, Failure> {
    let defaults = mock.map(MockServer::partner_credentials);
    let (client_id, client_secret) = pair(
        keys,
        &mut Stdin::new(),
        defaults
            .as_ref()
            .map(|d| (d.client_id.as_str(), d.client_secret.expose_secret())),
        "VIPPS_PARTNER_",
    )?;
    Ok(PartnerCredentials::new(client_id, client_secret))
}

/// `client_id` and `client_secret`; `variable_prefix` names the variables in errors.
fn pair(
    keys: &KeyArgs,
    stdin: &mut Stdin,
    defaults: Option<(&str, &str)>,
    variable_prefix: &str,
) -> Result<(String, String), Failure> {
    let client_id = pick(
        keys.client_id.as_ref(),
        false,
        stdin,
        defaults.map(|d| d.0),
        "client_id",
        &format!("set {variable_prefix}CLIENT_ID or pass --client-id"),
    )?;
    let client_secret = pick(
        keys.client_secret.as_ref(),
        keys.client_secret_stdin,
        stdin,
        defaults.map(|d| d.1),
        "client_secret",
        &format!(
            "set {variable_prefix}CLIENT_SECRET, pass --client-secret or --client-secret-stdin"
        ),
    )?;
    Ok((client_id, client_secret))
}
