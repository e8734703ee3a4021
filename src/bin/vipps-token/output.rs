//! Printing a token on stdout: alone, as a header, or as the response in JSON.

use std::{
    io::{self, Write},
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
}

/// The partner response.
#[derive(Serialize)]
struct PartnerJson<'a> {
    access_token: &'a str,
    token_type: &'a str,
    expires_in: u64,
}

/// Prints `token` in the form asked for. A closed stdout (`| head -c0`) is not an error.
pub fn print(token: &AccessToken, output: Output) -> Result<(), Failure> {
    let secret = token.secret().expose_secret();
    let text = match output {
        Output::Token => secret.to_owned(),
        Output::Header => format!("Authorization: Bearer {secret}"),
        Output::Json => json(token, secret),
    };
    match writeln!(io::stdout().lock(), "{text}") {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(Failure::new(
            OUTPUT,
            format!("could not write the token to stdout: {error}"),
        )),
        _ => Ok(()),
    }
}

fn json(token: &AccessToken, secret: &str) -> String {
    let expires_in = token.expires_in().as_secs();
    // Structs of strings and numbers always serialise.
    if token.flow() == Flow::Partner {
        serde_json::to_string_pretty(&PartnerJson {
            access_token: secret,
            token_type: token.token_type(),
            expires_in,
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
        })
    }
    .unwrap_or_default()
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
