//! Printing a token on stdout: alone, as a header, or as the response in JSON.

use std::{
    io::{self, Write},
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use vipps_access_token::{AccessToken, Flow};

use crate::{
    args::Output,
    failure::{Failure, OUTPUT},
};

/// The standard and legacy response, numbers as integers, fields in the API's order.
#[derive(Serialize)]
struct StandardJson<'a> {
    token_type: &'a str,
    expires_in: u64,
    ext_expires_in: Option<u64>,
    expires_on: Option<u64>,
    not_before: Option<u64>,
    resource: Option<&'a str>,
    access_token: &'a str,
    /// Not in the API's answer: when the token expires, in Unix seconds, counted from
    /// `expires_in` and this machine's clock, so a script need not remember when it asked.
    expires_at: u64,
}

/// The partner response.
#[derive(Serialize)]
struct PartnerJson<'a> {
    access_token: &'a str,
    token_type: &'a str,
    expires_in: u64,
    /// As in [`StandardJson::expires_at`].
    expires_at: u64,
}

/// Prints `token` in the form asked for (an output error is kept by [`line()`]).
pub fn print(token: &AccessToken, output: Output) {
    let secret = token.secret().expose_secret();
    let text = match output {
        Output::Token => secret.to_owned(),
        Output::Header => format!("Authorization: Bearer {secret}"),
        Output::Json => json(token, secret),
    };
    line(text);
}

/// The first stdout error other than a closed pipe, kept for the exit code.
static WRITE_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Writes `text` and a line break to stdout: see [`text`].
pub fn line(text: impl std::fmt::Display) {
    self::text(format!("{text}\n"));
}

/// Writes `text` to stdout; every subcommand prints through here, so that output errors
/// are handled alike everywhere. A closed pipe (`| head -c0`) is not an error: the reader
/// has what it wanted, and the exit code stays the command's outcome. Any other error (a
/// full disk) is kept, and [`write_failure`] turns it into exit 1.
pub fn text(text: impl AsRef<str>) {
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_all(text.as_ref().as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(error) = written
        && error.kind() != io::ErrorKind::BrokenPipe
    {
        let mut first = WRITE_ERROR
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        first.get_or_insert_with(|| format!("could not write to stdout: {error}"));
    }
}

/// Writes `text` and a line break to stderr; a stderr that cannot be written changes
/// nothing (the exit code still says what happened), and never panics.
pub fn note(text: impl std::fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Exit 1 if any output could not be written.
pub fn write_failure() -> Option<Failure> {
    let error = WRITE_ERROR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    error.map(|message| Failure::new(OUTPUT, message))
}

fn json(token: &AccessToken, secret: &str) -> String {
    let expires_in = token.expires_in().as_secs();
    // Structs of strings and numbers always serialise.
    if token.flow() == Flow::Partner {
        serde_json::to_string_pretty(&PartnerJson {
            access_token: secret,
            token_type: token.token_type(),
            expires_in,
            expires_at: unix(token.expires_at()),
        })
    } else {
        serde_json::to_string_pretty(&StandardJson {
            token_type: token.token_type(),
            expires_in,
            ext_expires_in: token.ext_expires_in().map(|d| d.as_secs()),
            expires_on: token.server_expires_on().map(unix),
            not_before: token.server_not_before().map(unix),
            resource: token.resource(),
            access_token: secret,
            expires_at: unix(token.expires_at()),
        })
    }
    .unwrap_or_default()
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
