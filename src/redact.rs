//! Short, secret-free excerpts of response bodies, for error messages.

/// The longest excerpt, in characters.
const EXCERPT_CHARS: usize = 120;

/// A run of token characters this long is taken for a token or key and hidden.
/// Subscription keys are 32 characters, client secrets 24, JWTs a thousand.
const SECRET_LOOKING_RUN: usize = 16;

/// The start of `body` as one line of text, with anything that looks like a token,
/// a key or a secret replaced by `[redacted]`.
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

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=' | '~')
}

fn flush(out: &mut String, run: &mut String) {
    if run.chars().count() >= SECRET_LOOKING_RUN {
        out.push_str("[redacted]");
    } else {
        out.push_str(run);
    }
    run.clear();
}

/// `text` with anything that looks like a token, a key or a secret replaced by
/// `[redacted]`, for messages that quote what a server sent.
pub(crate) fn hide_token_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut out, &mut run);
            out.push(c);
        }
    }
    flush(&mut out, &mut run);
    out
}

/// Replaces every occurrence of each known secret in `text` with `[redacted]`.
pub(crate) fn hide_secrets(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret, "[redacted]")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_long_token_runs_and_keeps_words() {
        let body = br#"{"access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni", "expires_in": 12a}"#;
        let e = excerpt(body);
        assert!(!e.contains("eyJ0eXAi"), "{e}");
        assert!(e.contains("[redacted]") && e.contains("expires_in"), "{e}");
    }

    #[test]
    fn truncates_and_joins_lines() {
        let body = "<html>\n<body>Bad gateway</body>\n</html>".repeat(20);
        let e = excerpt(body.as_bytes());
        assert!(e.starts_with("<html> <body>Bad gateway</body>"), "{e}");
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
    }

    #[test]
    fn hides_known_secrets() {
        assert_eq!(
            hide_secrets("secret=abc and abc", &["abc", ""]),
            "secret=[redacted] and [redacted]"
        );
    }
}
