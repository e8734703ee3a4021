//! Secret-free text from what a server sent: the secrets the caller sent are hidden
//! wherever they are echoed, and so is anything shaped like a token or a key. Prose, paths,
//! URLs and ids pass through unchanged, so that a message stays readable and a support
//! ticket can quote it.
//!
//! What is hidden, and what is kept, for a run of key characters:
//!
//! | run | verdict |
//! | --- | --- |
//! | a secret the caller sent ([`hide_secrets`]), anywhere: as sent, without its `=` padding, percent-encoded, base64-encoded | hidden |
//! | any piece of 8+ characters of such a secret (16+ hex digits of a hex key, in any case and across `-`: the key written as a UUID), also written as `&#NN;`, `&#xHH;`, `\uXXXX` or `%XX` escapes: the halves of a secret cut by a line wrap or a tag | hidden |
//! | a JWT (`eyJ...` in 3 or 5 base64url parts) | hidden |
//! | a UUID; a W3C `traceparent` (`00-<32 hex>-<16 hex>-01`); 40 hex digits (a commit SHA) | kept |
//! | any run right after an id's field name (`request_id`, `x-request-id`, `traceId`, `Trace ID:`, `correlation_id`, `reference`, `orderId`, `commit`, ...; see [`ID_FIELDS`]) | kept |
//! | any other 20+ hex digits (a subscription key is 32) | hidden |
//! | 20+ characters with a long stretch mixing digits with upper- **and** lower-case letters, or with base64's `+`, `/`, `=` (client secrets, Basic credentials, base64url keys) | hidden |
//! | anything else: prose, paths, URLs, single-case references such as `ORDER20240502ABC123456` or `acme-shop-order-000123` | kept |
//!
//! A 32-hex request id and a subscription key look the same; only the field name before it
//! tells them apart, and the caller's own subscription key is hidden by [`hide_secrets`]
//! whatever precedes it. A mixed-case reference with no field name before it is hidden:
//! erring on the side of the secret.

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

/// Field names (lower case, without `_`, `-` or spaces) whose value is an id, never a
/// secret: `request_id`, `X-Request-ID`, `traceId`, `Trace ID:`, `orderId`, ...
const ID_FIELDS: &[&str] = &[
    "requestid",
    "traceid",
    "traceparent",
    "spanid",
    "correlationid",
    "operationid",
    "activityid",
    "messageid",
    "transactionid",
    "orderid",
    "paymentid",
    "reference",
    "commit",
    "sha",
];

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

/// The most an [`crate::ErrorBody::Text`] keeps of a body, in bytes.
pub(crate) const TEXT_EXCERPT_BYTES: usize = 2048;

/// The longest escape of one character [`hide_secrets`] decodes (`&#1114111;`): a secret
/// written with escapes takes at most this many bytes a character.
const MAX_ESCAPE_BYTES: usize = 10;

/// At most the first [`TEXT_EXCERPT_BYTES`] of `text` (cut on a character boundary),
/// redacted ([`redact`]), and `…[N more bytes]` when `text` was longer. Redacted before it
/// is cut, over the excerpt and a margin of one secret's length in its longest form, so that
/// a secret (or a key-shaped run) across the cut is hidden whole; the cost stays bounded
/// whatever the length of `text`.
pub(crate) fn text_excerpt(text: &str, secrets: &[&str]) -> String {
    let cut = floor_char_boundary(text, TEXT_EXCERPT_BYTES);
    if cut == text.len() {
        return redact(text, secrets);
    }
    let longest = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
    let margin = longest
        .saturating_mul(2 * MAX_ESCAPE_BYTES)
        .saturating_add(4 * SECRET_RUN_CHARS);
    let window = &text[..floor_char_boundary(text, cut.saturating_add(margin))];
    let hidden = redact(window, secrets);
    let mut end = floor_char_boundary(&hidden, TEXT_EXCERPT_BYTES);
    // A `[redacted]` across the cut is kept whole, so that no half marker is shown.
    if let Some(marker) = hidden[..end].rfind('[')
        && hidden[marker..].starts_with(REDACTED)
        && marker.saturating_add(REDACTED.len()) > end
    {
        end = marker.saturating_add(REDACTED.len());
    }
    format!(
        "{}…[{} more bytes]",
        &hidden[..end],
        text.len().saturating_sub(cut)
    )
}

/// The largest index of a character boundary of `text` at most `at` (`str::floor_char_boundary`
/// is newer than this crate's MSRV).
fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// `text` on one line, at most [`EXCERPT_CHARS`] characters, without redacting it: for a
/// text redacted when it was kept.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > EXCERPT_CHARS {
            break;
        }
    }
    if out.chars().count() <= EXCERPT_CHARS {
        return out;
    }
    let mut out: String = out.chars().take(EXCERPT_CHARS).collect();
    out.push('…');
    out
}

/// A character of base64, base64url, hex or a JWT (its dots included).
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=' | '~')
}

/// Everything a server's `text` must not show: the caller's `secrets` in any form
/// ([`hide_secrets`]), then anything shaped like a token or a key ([`hide_token_like`]).
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    hide_token_like(&hide_secrets(text, secrets))
}

/// [`redact`] for a field that holds an id (Azure AD's `trace_id`, `correlation_id`):
/// as after an id's field name, only JWTs and the caller's secrets are hidden.
pub(crate) fn redact_id(text: &str, secrets: &[&str]) -> String {
    hide_runs(&hide_secrets(text, secrets), true)
}

/// `text` with every JWT and every key-shaped run (see [`looks_like_key`]) replaced by
/// `[redacted]`, for messages that quote what a server sent.
pub(crate) fn hide_token_like(text: &str) -> String {
    hide_runs(text, false)
}

/// [`hide_token_like`]; `is_id` treats every run as following an id's field name.
fn hide_runs(text: &str, is_id: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_key_char) {
        out.push_str(&rest[..start]);
        let run_len = rest[start..]
            .find(|c: char| !is_key_char(c))
            .unwrap_or(rest.len() - start);
        let after_id_field = is_id || follows_id_field(&out);
        hide_run(&mut out, &rest[start..start + run_len], after_id_field);
        rest = &rest[start + run_len..];
    }
    out.push_str(rest);
    out
}

/// Appends `run` to `out`, a JWT as a whole and anything else dot by dot, so that a
/// sentence's full stop or a host name never joins two parts into one key.
fn hide_run(out: &mut String, run: &str, after_id_field: bool) {
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
        let hidden = !after_id_field && looks_like_key(part);
        out.push_str(if hidden { REDACTED } else { part });
    }
}

/// True when `before` ends with an id's field name and its separator: `"request_id": "`,
/// `X-Request-ID=`, `Trace ID: `, `traceparent `.
fn follows_id_field(before: &str) -> bool {
    let name = before.trim_end_matches(['"', '\'', ':', '=', ' ', '\t']);
    if name.len() == before.len() {
        return false;
    }
    let tail: String = name
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '))
        .take(40)
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    ID_FIELDS.iter().any(|field| tail.ends_with(field))
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

/// True for a hex key (20+ hex digits, but not the 40 of a commit SHA) or a base64 or
/// base64url key: long, with a long stretch that mixes digits with upper- and lower-case
/// letters, or with base64's own `+`, `/` or `=`. Ids (UUIDs, `traceparent`) are not keys.
fn looks_like_key(run: &str) -> bool {
    if run.trim_end_matches('=').len() < SECRET_RUN_CHARS || is_uuid(run) || is_traceparent(run) {
        return false;
    }
    if run.chars().all(|c| c.is_ascii_hexdigit()) {
        return run.len() != 40;
    }
    let base64_marks = run.contains(['+', '/', '=']);
    run.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|stretch| {
            let mixed_case = stretch.chars().any(|c| c.is_ascii_uppercase())
                && stretch.chars().any(|c| c.is_ascii_lowercase());
            stretch.len() >= SECRET_STRETCH_CHARS
                && stretch.chars().any(|c| c.is_ascii_digit())
                && stretch.chars().any(|c| c.is_ascii_alphabetic())
                && (mixed_case || base64_marks)
        })
}

/// A W3C `traceparent`: version, trace id, parent id and flags, `2-32-16-2` hex digits.
fn is_traceparent(run: &str) -> bool {
    hex_groups(run, &[2, 32, 16, 2])
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(run: &str) -> bool {
    hex_groups(run, &[8, 4, 4, 4, 12])
}

/// `run` is groups of hex digits of these lengths, joined by `-`.
fn hex_groups(run: &str, lengths: &[usize]) -> bool {
    let groups: Vec<&str> = run.split('-').collect();
    groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(group, len)| group.len() == *len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Replaces every occurrence of each known secret in `text` with `[redacted]`, in every
/// form a server may echo it: as sent, percent-encoded (a form body or a URL quoted
/// back), base64-encoded, and without its `=` padding (which also covers escapes such as
/// `\u003d` that follow it); then any piece of one ([`hide_secret_pieces`]): cut by a line
/// wrap or a tag, escaped character by character, a hex key written as a UUID.
pub(crate) fn hide_secrets(text: &str, secrets: &[&str]) -> String {
    let mut forms: Vec<String> = secrets.iter().flat_map(|s| echoed_forms(s)).collect();
    // Longest first, so that a form is replaced whole before a shorter one inside it.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms.dedup();
    let whole = forms.iter().fold(text.to_owned(), |text, form| {
        text.replace(form.as_str(), REDACTED)
    });
    hide_secret_pieces(&whole, secrets)
}

/// A piece of a secret at least this long is hidden wherever it appears: a server that
/// cuts a secret in two (a line wrap, `<wbr>`) shows no half of it.
const SECRET_PIECE_CHARS: usize = 8;

/// The same for a hex secret (a subscription key, 32 digits), whose pieces are compared
/// without case and across `-`: 8 hex digits would also be the first group of any UUID.
const HEX_SECRET_PIECE_CHARS: usize = 16;

/// One character of a text as a reader decodes it, and the bytes of the text it came
/// from: itself, or an escape (`&#61;`, `&#x3d;`, `\u003d`, `%3D`).
struct Decoded {
    c: char,
    start: usize,
    end: usize,
}

/// `text` character by character, HTML character references, `\uXXXX` escapes and
/// percent-encoded bytes decoded.
fn decoded(text: &str) -> Vec<Decoded> {
    let mut out = Vec::with_capacity(text.len());
    let mut start = 0;
    while let Some(rest) = text.get(start..) {
        let Some(first) = rest.chars().next() else {
            break;
        };
        let (c, len) = escape_at(rest).unwrap_or((first, first.len_utf8()));
        out.push(Decoded {
            c,
            start,
            end: start.saturating_add(len),
        });
        start = start.saturating_add(len);
    }
    out
}

/// The character an escape at the start of `text` stands for, and the escape's length.
fn escape_at(text: &str) -> Option<(char, usize)> {
    let number = |digits: &str, radix: u32| u32::from_str_radix(digits, radix).ok();
    if let Some(reference) = text.strip_prefix("&#") {
        let (digits, _) = reference.split_once(';')?;
        let code = match digits.strip_prefix(['x', 'X']) {
            Some(hex) if (1..=6).contains(&hex.len()) => number(hex, 16)?,
            None if (1..=7).contains(&digits.len()) => number(digits, 10)?,
            _ => return None,
        };
        return Some((char::from_u32(code)?, digits.len().saturating_add(3)));
    }
    if let Some(escape) = text.strip_prefix("\\u") {
        let hex = escape.get(..4)?;
        return Some((char::from_u32(number(hex, 16)?)?, 6));
    }
    if let Some(percent) = text.strip_prefix('%') {
        let byte = u8::try_from(number(percent.get(..2)?, 16)?).ok()?;
        return byte.is_ascii().then_some((char::from(byte), 3));
    }
    None
}

/// Hides every piece of a secret in `text` ([`SECRET_PIECE_CHARS`] characters or more,
/// [`HEX_SECRET_PIECE_CHARS`] hex digits for a hex secret), matched on the decoded text.
/// The caller's client id and ids that are not secrets share no such piece with a secret.
fn hide_secret_pieces(text: &str, secrets: &[&str]) -> String {
    let chars = decoded(text);
    let mut hidden = vec![false; chars.len()];
    for secret in secrets {
        let hex =
            secret.len() >= HEX_SECRET_PIECE_CHARS && secret.chars().all(|c| c.is_ascii_hexdigit());
        let (piece_len, fold): (usize, fn(char) -> char) = if hex {
            (HEX_SECRET_PIECE_CHARS, |c| c.to_ascii_lowercase())
        } else {
            (SECRET_PIECE_CHARS, |c| c)
        };
        let secret: Vec<char> = secret.chars().map(fold).collect();
        if secret.len() < piece_len {
            continue; // hidden whole, or not at all
        }
        let pieces: std::collections::HashSet<&[char]> = secret.windows(piece_len).collect();
        // For a hex key, dashes are left out: the key written as a UUID is still the key.
        let at: Vec<usize> = (0..chars.len())
            .filter(|&i| !(hex && chars[i].c == '-'))
            .collect();
        let seen: Vec<char> = at.iter().map(|&i| fold(chars[i].c)).collect();
        for (n, window) in seen.windows(piece_len).enumerate() {
            if pieces.contains(window) {
                let (first, last) = (at[n], at[n + piece_len - 1]);
                hidden[first..=last].iter_mut().for_each(|h| *h = true);
            }
        }
    }
    if !hidden.contains(&true) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for (i, c) in chars.iter().enumerate() {
        if !hidden[i] {
            out.push_str(&text[c.start..c.end]);
        } else if i == 0 || !hidden[i - 1] {
            out.push_str(REDACTED);
        }
    }
    out
}

/// The forms `secret` can be echoed in, none empty.
fn echoed_forms(secret: &str) -> Vec<String> {
    use base64::{
        Engine as _,
        engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD},
    };
    let mut forms = vec![
        secret.to_owned(),
        secret.trim_end_matches('=').to_owned(),
        percent_encoded(secret, false),
        percent_encoded(secret, true),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
    ];
    for engine in [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.retain(|form| !form.is_empty());
    forms
}

/// `text` with every byte but RFC 3986's unreserved characters written `%XX`.
fn percent_encoded(text: &str, lower_case: bool) -> String {
    text.bytes()
        .map(|byte| {
            let unreserved = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
            match (unreserved, lower_case) {
                (true, _) => char::from(byte).to_string(),
                (false, false) => format!("%{byte:02X}"),
                (false, true) => format!("%{byte:02x}"),
            }
        })
        .collect()
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
    fn keeps_trace_ids_request_ids_shas_and_order_references() {
        for kept in [
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "failed (00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00)",
            r#"{"request_id": "4bf92f3577b34da6a3ce929d0e0e4736"}"#,
            r#"{"requestId":"0af7651916cd43dd8448eb211c80319c","traceId":"b7ad6b7169203331b7ad6b7169203331"}"#,
            "X-Request-ID: 9c4d0e3a1f2b4c5d6e7f8a9b0c1d2e3f",
            "Trace ID: 4bf92f3577b34da6a3ce929d0e0e4736 Correlation ID: 0af7651916cd43dd8448eb211c80319c",
            "built from 3f786850e387550fdab836ed7e6dc881de23001b on main",
            "order ORDER20240502ABC123456 not found",
            "reference acme-webshop-order-2024-05-02-000123 is already captured",
            r#"{"reference": "AcmeShop2024Order000123xY"}"#,
            r#"{"orderId": "Zx81Kq2024aBcD99887766"}"#,
        ] {
            assert_eq!(hide_token_like(kept), kept);
            assert_eq!(excerpt(kept.as_bytes()), kept);
        }
    }

    #[test]
    fn hides_keys_whatever_the_ids_around_them() {
        for (text, hidden) in [
            (
                format!("key {SUBSCRIPTION_KEY} for request 4bf92f3577b34da6a3ce929d0e0e4736"),
                "key [redacted] for request [redacted]".to_owned(),
            ),
            (
                format!("Ocp-Apim-Subscription-Key: {SUBSCRIPTION_KEY}"),
                "Ocp-Apim-Subscription-Key: [redacted]".to_owned(),
            ),
            (
                format!("client_secret: {CLIENT_SECRET} traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                "client_secret: [redacted] traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            ),
            (
                format!(r#"{{"request_id": "{JWT}"}}"#),
                r#"{"request_id": "[redacted]"}"#.to_owned(),
            ),
            (
                "sig Zx81Kq2024aBcD99887766AbC".to_owned(),
                "sig [redacted]".to_owned(),
            ),
        ] {
            assert_eq!(hide_token_like(&text), hidden);
        }
        // The caller's own key is hidden even where an id would be kept.
        let echoed = format!(r#"{{"request_id": "{SUBSCRIPTION_KEY}"}}"#);
        assert_eq!(
            hide_secrets(&hide_token_like(&echoed), &[SUBSCRIPTION_KEY]),
            r#"{"request_id": "[redacted]"}"#
        );
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
    fn hides_known_secrets_percent_and_base64_encoded() {
        for echoed in [
            "Y8Kteew6GE2ZmeycEt6egg%3D%3D",
            "Y8Kteew6GE2ZmeycEt6egg%3d%3d",
            r"Y8Kteew6GE2ZmeycEt6egg\u003d\u003d",
            "WThLdGVldzZHRTJabWV5Y0V0NmVnZz09",
            "MGYxNGViY2FiMGVjNGIyOWFlMGNiOTBkOTFiNGE4NGE=",
            "MGYxNGViY2FiMGVjNGIyOWFlMGNiOTBkOTFiNGE4NGE",
        ] {
            let text = format!("got {echoed}.");
            let hidden = hide_secrets(&text, &[CLIENT_SECRET, SUBSCRIPTION_KEY]);
            assert!(hidden.starts_with("got [redacted]"), "{echoed}: {hidden}");
            assert!(!hidden.contains("Y8Kteew6") && !hidden.contains("MGYxNGVi"));
        }
        // A secret no shape would catch is still found in each form.
        assert_eq!(
            hide_secrets(
                "a b c/d, a%20b%20c%2fd, a+b+c%2Fd, YSBiIGMvZA",
                &["a b c/d"]
            ),
            "[redacted], [redacted], [redacted], [redacted]"
        );
    }

    #[test]
    fn hides_pieces_of_secrets_cut_dashed_or_escaped() {
        let secrets = [CLIENT_SECRET, SUBSCRIPTION_KEY];
        let (a, b) = CLIENT_SECRET.split_at(12);
        let (k1, k2) = SUBSCRIPTION_KEY.split_at(16);
        let k = SUBSCRIPTION_KEY;
        let dashed = format!(
            "{}-{}-{}-{}-{}",
            &k[..8],
            &k[8..12],
            &k[12..16],
            &k[16..20],
            &k[20..]
        );
        let escaped =
            |form: fn(char) -> String| CLIENT_SECRET.chars().map(form).collect::<String>();
        for (text, hidden) in [
            (
                format!("secret={a}\n{b}!"),
                "secret=[redacted]\n[redacted]!".to_owned(),
            ),
            (
                format!("{a}<wbr>{b}"),
                "[redacted]<wbr>[redacted]".to_owned(),
            ),
            (
                format!("key {k1}<wbr>{k2}"),
                "key [redacted]<wbr>[redacted]".to_owned(),
            ),
            (
                format!("subscription {dashed} is off"),
                "subscription [redacted] is off".to_owned(),
            ),
            (
                format!("({})", dashed.to_uppercase()),
                "([redacted])".to_owned(),
            ),
            (
                format!("<p>{}</p>", escaped(|c| format!("&#{};", c as u32))),
                "<p>[redacted]</p>".to_owned(),
            ),
            (
                escaped(|c| format!("&#x{:X};", c as u32)),
                "[redacted]".to_owned(),
            ),
            (
                format!("echo: {}", escaped(|c| format!("\\u{:04x}", c as u32))),
                "echo: [redacted]".to_owned(),
            ),
            (
                escaped(|c| format!("%{:02X}", c as u32)),
                "[redacted]".to_owned(),
            ),
            // Short of a piece: 7 characters, 15 hex digits.
            (
                format!("{} {}", &a[..7], &k1[..15]),
                format!("{} {}", &a[..7], &k1[..15]),
            ),
        ] {
            assert_eq!(hide_secrets(&text, &secrets), hidden, "{text}");
        }
        // Ids stay: the client id, a UUID, a trace id; and escapes that are not secrets.
        let kept = format!(
            "{CLIENT_ID} 8d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6 4bf92f3577b34da6a3ce929d0e0e4736 &#61; %3D \\u003d 100%"
        );
        assert_eq!(hide_secrets(&kept, &secrets), kept);
    }

    #[test]
    fn redact_keeps_ids_in_id_fields_but_not_tokens() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(redact_id(trace, &[]), trace);
        assert_eq!(redact_id(JWT, &[]), "[redacted]");
        assert_eq!(
            redact_id(SUBSCRIPTION_KEY, &[SUBSCRIPTION_KEY]),
            "[redacted]"
        );
        assert_eq!(
            redact(&format!("key {trace}, secret {CLIENT_SECRET}"), &[]),
            "key [redacted], secret [redacted]"
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
