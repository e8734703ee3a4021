//! `decode`: a JWT's header and claims, and how long it has left, without verifying it.

use std::{
    io::{self, Read},
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value};
use vipps_access_token::UnverifiedJwt;

use crate::{
    args::{DecodeArgs, ReportFormat},
    failure::Failure,
    output,
};

/// Runs `decode`.
pub fn run(args: DecodeArgs) -> Result<(), Failure> {
    let raw = match args.token.as_deref() {
        None | Some("-") => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::usage(format!("could not read the token from stdin: {e}")))?;
            text
        }
        Some(token) => token.to_owned(),
    };
    let jwt = UnverifiedJwt::decode(bare_token(&raw)).map_err(|e| Failure::usage(e.to_string()))?;
    let now = now();
    match args.output {
        ReportFormat::Text => output::line(format!(
            "header: {}\nclaims: {}\n{}\nsignature: not verified",
            pretty(&jwt.header),
            pretty(&jwt.claims),
            time_left(&jwt.claims, now)
        )),
        ReportFormat::Json => {
            let exp = jwt.claims.get("exp").and_then(Value::as_u64);
            let report = serde_json::json!({
                "header": jwt.header,
                "claims": jwt.claims,
                "expires_at": exp,
                "seconds_left": exp.map(|exp| i128::from(exp) - i128::from(now)),
                "expired": exp.map(|exp| exp <= now),
                "signature_verified": false,
            });
            output::line(serde_json::to_string_pretty(&report).unwrap_or_default());
        }
    }
    Ok(())
}

/// The token without `Authorization:`, `Bearer` or surrounding whitespace.
fn bare_token(raw: &str) -> &str {
    let mut token = raw.trim();
    if let Some((name, rest)) = token.split_once(':')
        && name.trim().eq_ignore_ascii_case("authorization")
    {
        token = rest.trim();
    }
    if let Some((scheme, rest)) = token.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        token = rest.trim();
    }
    token
}

fn pretty(object: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(object).unwrap_or_default()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `expires in 59m 58s (exp 1700003600)`, or how long ago it expired.
fn time_left(claims: &Map<String, Value>, now: u64) -> String {
    let Some(exp) = claims.get("exp").and_then(Value::as_u64) else {
        return "expires: unknown (no numeric exp claim)".to_owned();
    };
    if exp > now {
        format!("expires in {} (exp {exp})", human(exp - now))
    } else {
        format!("expired {} ago (exp {exp})", human(now - exp))
    }
}

/// `1d 2h 3m 4s`, leaving out leading zero units.
fn human(seconds: u64) -> String {
    let units = [
        (seconds / 86_400, "d"),
        (seconds / 3600 % 24, "h"),
        (seconds / 60 % 60, "m"),
        (seconds % 60, "s"),
    ];
    let parts: Vec<String> = units
        .iter()
        .skip_while(|(n, unit)| *n == 0 && *unit != "s")
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_header_name_and_scheme() {
        assert_eq!(bare_token("  a.b.c\n"), "a.b.c");
        assert_eq!(bare_token("Bearer a.b.c"), "a.b.c");
        assert_eq!(bare_token("Authorization: Bearer a.b.c"), "a.b.c");
    }

    #[test]
    fn says_how_long_is_left() {
        let claims = |exp: u64| {
            let mut map = Map::new();
            map.insert("exp".into(), exp.into());
            map
        };
        assert_eq!(
            time_left(&claims(4600), 1000),
            "expires in 1h 0m 0s (exp 4600)"
        );
        assert_eq!(time_left(&claims(1000), 1005), "expired 5s ago (exp 1000)");
        assert_eq!(human(90_061), "1d 1h 1m 1s");
        assert!(time_left(&Map::new(), 0).contains("unknown"));
    }
}
