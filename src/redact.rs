//! Secret-free text from what a server sent: the secrets the caller sent are hidden
//! wherever they are echoed, and so is anything shaped like a token or a key. Prose, paths,
//! URLs and ids (UUIDs, trace ids) pass through unchanged, so that a message stays readable.

/// The longest excerpt, in characters.
const EXCERPT_CHARS: usize = 120;

/// What a hidden value is replaced with.
const REDACTED: &str = "[redacted]";

/// A run of key characters at least this long can be a key: client secrets are 24
/// characters (22 without padding), subscription keys 32, JWTs a thousand.
const SECRET_RUN_CHARS: usize = 20;

/// A key has a stretch of letters mixed with digits at least this long; a path or a word
/// list (`request/response`, `/api/v2/accesstoken/jwt`) has none.
const SECRET_STRETCH_CHARS: usize = 16;

/// The start of `body` as one line of text, with anything that looks like a token, a key
/// or a secret replaced by `[redacted]`.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let hidden = hide_token_like(&one_line);
    if hidden.chars().count() <= EXCERPT_CHARS {
        return hidden;
    }
    let mut out: String = hidden.chars().take(EXCERPT_CHARS).collect();
    out.push('…');
    out
}

/// A character of base64, base64url, hex or a JWT (its dots included).
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=' | '~')
}

/// `text` with every JWT and every key-shaped run (see [`looks_like_key`]) replaced by
/// `[redacted]`, for messages that quote what a server sent.
pub(crate) fn hide_token_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_key_char) {
        out.push_str(&rest[..start]);
        let run_len = rest[start..]
            .find(|c: char| !is_key_char(c))
            .unwrap_or(rest.len() - start);
        hide_run(&mut out, &rest[start..start + run_len]);
        rest = &rest[start + run_len..];
    }
    out.push_str(rest);
    out
}

/// Appends `run` to `out`, a JWT as a whole and anything else dot by dot, so that a
/// sentence's full stop or a host name never joins two parts into one key.
fn hide_run(out: &mut String, run: &str) {
    let token = run.trim_end_matches('.');
    if is_jwt(token) {
        out.push_str(REDACTED);
        out.push_str(&run[token.len()..]);
        return;
    }
    for (i, part) in run.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(if looks_like_key(part) { REDACTED } else { part });
    }
}

/// A JWS or JWE in compact form: a base64url JOSE header (always `eyJ`, the encoding of
/// `{"`), then two or four more base64url parts.
fn is_jwt(run: &str) -> bool {
    let parts: Vec<&str> = run.split('.').collect();
    matches!(parts.len(), 3 | 5)
        && run.starts_with("eyJ")
        && parts.iter().all(|part| {
            part.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        })
}

/// True for a base64, base64url or hex key: long, and with a long stretch that mixes
/// letters and digits. UUIDs (client ids, trace and correlation ids) are ids, not keys.
fn looks_like_key(run: &str) -> bool {
    if run.trim_end_matches('=').len() < SECRET_RUN_CHARS || is_uuid(run) {
        return false;
    }
    run.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|stretch| {
            stretch.len() >= SECRET_STRETCH_CHARS
                && stretch.chars().any(|c| c.is_ascii_digit())
                && stretch.chars().any(|c| c.is_ascii_alphabetic())
        })
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(run: &str) -> bool {
    let groups: Vec<&str> = run.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Replaces every occurrence of each known secret in `text` with `[redacted]`.
pub(crate) fn hide_secrets(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret, REDACTED)
        })
}

/// Hides each secret in every string of `json`, keys included: JSON escapes (`\u003d` for
/// `=`) can hide a secret from a search of the raw text.
pub(crate) fn hide_secrets_in_json(json: &mut serde_json::Value, secrets: &[&str]) {
    use serde_json::Value;
    match json {
        Value::String(text) => *text = hide_secrets(text, secrets),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| hide_secrets_in_json(item, secrets)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut value) in entries {
                hide_secrets_in_json(&mut value, secrets);
                map.insert(hide_secrets(&key, secrets), value);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The documented example keys, and a JWT made of base64url parts.
    const CLIENT_ID: &str = "fb492b5e-7907-4d83-ba20-c7fb60ca35de";
    const CLIENT_SECRET: &str = "Y8Kteew6GE2ZmeycEt6egg==";
    const SUBSCRIPTION_KEY: &str = "0f14ebcab0ec4b29ae0cb90d91b4a84a";
    const JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.U2lnbmF0dXJlT25l";

    #[test]
    fn keeps_prose_paths_urls_and_ids() {
        for prose in [
            "the request/response pair and/or its retry",
            "POST /accesstoken/get and /api/v2/accesstoken/jwt answered 404.",
            "see https://apitest.vipps.no/accesstoken/get or https://login.microsoftonline.com/error?code=7000215",
            "AADSTS7000215: Invalid client secret provided. Trace ID: 8d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6 \
             Correlation ID: 0c9a8b7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d Timestamp: 2024-05-02 09:14:31Z",
            "Application with identifier 'fb492b5e-7907-4d83-ba20-c7fb60ca35de' was not found",
            "internationalization/localization.",
        ] {
            assert_eq!(hide_token_like(prose), prose);
        }
    }

    #[test]
    fn hides_every_secret_shape() {
        let basic =
            "ZmI0OTJiNWUtNzkwNy00ZDgzLWJhMjAtYzdmYjYwY2EzNWRlOlk4S3RlZXc2R0UyWm1leWNFdDZlZ2c9PQ==";
        for (what, secret) in [
            ("a JWT", JWT),
            ("a JWT's signature alone", "U2lnbmF0dXJlT25lVHdvVGhyZWU"),
            ("a client secret (base64)", CLIENT_SECRET),
            ("a subscription key (hex)", SUBSCRIPTION_KEY),
            ("Basic credentials", basic),
            ("a base64url key", "q9-Xw3_Zr7Tn2Lp8Vb4Kc6Yd1Mh5Gj0"),
        ] {
            let text = format!("before {secret}. after");
            let hidden = hide_token_like(&text);
            assert_eq!(hidden, "before [redacted]. after", "{what}");
        }
    }

    #[test]
    fn hides_known_secrets_even_when_short_or_word_like() {
        assert_eq!(
            hide_secrets("secret=abc and abc", &["abc", ""]),
            "secret=[redacted] and [redacted]"
        );
        let text = format!("{CLIENT_ID} {CLIENT_SECRET} {SUBSCRIPTION_KEY}");
        assert_eq!(
            hide_secrets(&text, &[CLIENT_SECRET, SUBSCRIPTION_KEY]),
            format!("{CLIENT_ID} [redacted] [redacted]")
        );
    }

    #[test]
    fn hides_secrets_behind_json_escapes() {
        let mut json: serde_json::Value = serde_json::from_str(
            r#"{"Y8Kteew6GE2ZmeycEt6egg\u003d\u003d": ["Y8Kteew6GE2ZmeycEt6egg\u003d\u003d"]}"#,
        )
        .expect("valid JSON");
        hide_secrets_in_json(&mut json, &[CLIENT_SECRET]);
        assert_eq!(json.to_string(), r#"{"[redacted]":["[redacted]"]}"#);
    }

    #[test]
    fn excerpt_hides_token_runs_and_keeps_words() {
        let body = br#"{"access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni", "expires_in": 12a}"#;
        let e = excerpt(body);
        assert!(!e.contains("eyJ0eXAi"), "{e}");
        assert!(e.contains("[redacted]") && e.contains("expires_in"), "{e}");
    }

    #[test]
    fn excerpt_truncates_and_joins_lines() {
        let body = "<html>\n<body>Bad gateway</body>\n</html>".repeat(20);
        let e = excerpt(body.as_bytes());
        assert!(e.starts_with("<html> <body>Bad gateway</body>"), "{e}");
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
    }
}
