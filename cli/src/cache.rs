//! `cache list` and `cache clear`: the token commands' file cache, in
//! `$XDG_CACHE_HOME/vipps-token`, else `~/.cache/vipps-token`. Lists key names (HMACs),
//! flows and expiry; never a token, a key or whose token it is.

use std::{
    io::{self, Write},
    time::SystemTime,
};

use vipps_access_token::{
    ClientSecret, Flow,
    store::{self, FileEntry, FileEntryKind, StoreError},
};

use crate::{
    args::{CacheCommand, Env, StoreArgs},
    failure::{Failure, OUTPUT},
};

/// Runs `cache list` or `cache clear`.
pub fn run(command: CacheCommand) -> Result<(), Failure> {
    let (CacheCommand::List(args) | CacheCommand::Clear(args)) = &command;
    let dir = args
        .dir
        .clone()
        .or_else(crate::store::default_dir)
        .ok_or_else(|| {
            Failure::usage("no cache directory: set XDG_CACHE_HOME or HOME, or pass --dir")
        })?;
    // Looking must not create the directory: a missing one holds nothing.
    let store = crate::store::open_existing_file(&dir).map_err(unusable)?;
    let text = match command {
        CacheCommand::List(_) => {
            let entries = match &store {
                Some(store) => store.entries().map_err(unusable)?,
                None => Vec::new(),
            };
            if entries.is_empty() {
                format!("no cached tokens in {}", dir.display())
            } else {
                let now = SystemTime::now();
                let lines: Vec<String> = entries.iter().map(|e| describe(e, now)).collect();
                lines.join("\n")
            }
        }
        CacheCommand::Clear(_) => {
            let removed = match &store {
                Some(store) => store.clear().map_err(unusable)?,
                None => 0,
            };
            let plural = if removed == 1 { "" } else { "s" };
            format!(
                "removed {removed} cached token{plural} from {}",
                dir.display()
            )
        }
    };
    match writeln!(io::stdout().lock(), "{text}") {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(Failure::new(
            OUTPUT,
            format!("could not write to stdout: {error}"),
        )),
        _ => Ok(()),
    }
}

/// A cache that cannot be opened, listed or cleared: exit 2, the message says why.
fn unusable(error: StoreError) -> Failure {
    Failure::usage(error.to_string())
}

/// One line: the key name, the flow (or that it is a failure marker), when it expires.
fn describe(entry: &FileEntry, now: SystemTime) -> String {
    let flow = match entry.flow {
        _ if entry.kind == FileEntryKind::FailureMarker => "failure marker: a fetch just failed;",
        Some(Flow::Standard) => "standard",
        Some(Flow::Partner) => "partner",
        Some(Flow::Legacy) => "legacy",
        None => "-",
    };
    let expiry = match entry.expires_at {
        None => "unreadable: replaced by the next fetch".to_owned(),
        Some(at) => {
            let when = humantime::format_rfc3339_seconds(at);
            match at.duration_since(now) {
                Ok(left) => format!(
                    "expires {when} (in {})",
                    humantime::format_duration(std::time::Duration::from_secs(left.as_secs()))
                ),
                Err(_) => format!("expired {when}"),
            }
        }
    };
    format!("{}  {flow:<8}  {expiry}", entry.name)
}

/// How the file cache looks to `doctor`: the outcome and what to do.
pub enum Health {
    /// Usable.
    Ok(String),
    /// Not used, or not usable now: each run fetches its own token.
    Warn(String),
    /// Refused: the token commands exit 2 until it is fixed.
    Fail(String),
}

/// The file cache the token commands would use: its path, whether it is private and
/// writable (a sealed probe record written, read back and removed), how many tokens it
/// holds.
pub async fn health(args: &StoreArgs, env: Env, secret: Option<&ClientSecret>) -> Health {
    if args.no_cache {
        return Health::Ok("not used (--no-cache): each run fetches its own token".to_owned());
    }
    if env == Env::Mock {
        return Health::Ok("not used with --env mock: its tokens end with the process".to_owned());
    }
    let Some(dir) = crate::store::default_dir() else {
        return Health::Warn(
            "no cache directory (neither XDG_CACHE_HOME nor HOME is set): each run fetches \
             its own token; set one, or pass --store file:DIR"
                .to_owned(),
        );
    };
    let store = match crate::store::open_file(&dir, secret) {
        Ok(store) => store,
        Err(StoreError::Unavailable(reason)) => {
            return Health::Warn(format!("{reason}: each run fetches its own token"));
        }
        Err(error) => return Health::Fail(format!("{error}; or pass --no-cache")),
    };
    if let Err(error) = store::probe(&store).await {
        return Health::Warn(format!(
            "{}: {error}; each run fetches its own token until it is fixed",
            dir.display()
        ));
    }
    let held = store.entries().map_or(0, |entries| {
        let now = SystemTime::now();
        entries
            .iter()
            .filter(|entry| entry.kind == FileEntryKind::Token)
            .filter(|entry| entry.expires_at.is_some_and(|at| at > now))
            .count()
    });
    let plural = if held == 1 { "" } else { "s" };
    Health::Ok(format!(
        "{}: private and writable; {held} cached token{plural} (vipps-token cache list)",
        dir.display()
    ))
}
