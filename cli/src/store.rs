//! Where the token commands keep tokens between runs: by default a file cache in the
//! user's cache directory, sealed under a key derived from the client secret; with
//! `--store URL` a Redis shared by many machines (sealed with `VIPPS_TOKEN_STORE_KEY`,
//! never a flag: flags show in `ps`) or another directory (`file:DIR`); none with
//! `--no-cache`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use vipps_access_token::{
    ClientSecret,
    store::{FileTokenStore, RedisTokenStore, SealingKeys, StoreConfig, StoreError, TokenStore},
};

use crate::{
    args::{Env, StoreArgs},
    failure::Failure,
    output,
};

/// The sealing key, base64 of 32 bytes.
pub const KEY_VARIABLE: &str = "VIPPS_TOKEN_STORE_KEY";
/// The previous sealing key, still read during a rotation.
pub const PREVIOUS_KEY_VARIABLE: &str = "VIPPS_TOKEN_STORE_PREVIOUS_KEY";
/// Another key prefix than `vipps-access-token:`, to share one Redis between applications.
pub const PREFIX_VARIABLE: &str = "VIPPS_TOKEN_STORE_PREFIX";
/// The scheme of `--store file:DIR`.
const FILE_SCHEME: &str = "file:";
/// The directory of the cache under the user's cache directory.
const CACHE_DIR_NAME: &str = "vipps-token";
/// A PEM file of the CA that signed Redis's certificate, for `rediss` URLs; without it,
/// the system's roots.
pub const CA_VARIABLE: &str = "VIPPS_TOKEN_STORE_CA";

/// The store a token command uses, if any: `--store URL`, else the file cache (not with
/// `--no-cache`, nor for `--env mock`, whose tokens die with the process). A usage error
/// (exit 2) for a bad store setting; a cache that cannot be used now (read-only or full
/// disk) is a warning, and the token is fetched directly.
pub fn for_token(
    args: &StoreArgs,
    env: Env,
    secret: &ClientSecret,
) -> Result<Option<Arc<dyn TokenStore>>, Failure> {
    if args.no_cache {
        return Ok(None);
    }
    let dir = match &args.store {
        Some(url) => match url.strip_prefix(FILE_SCHEME) {
            Some(dir) => PathBuf::from(dir),
            None => {
                return try_open(url, Some(secret))
                    .map(Some)
                    .map_err(Failure::usage);
            }
        },
        None if env == Env::Mock => return Ok(None),
        None => match default_dir() {
            Some(dir) => dir,
            None => return Ok(None),
        },
    };
    match open_file(&dir, Some(secret)) {
        Ok(store) => Ok(Some(Arc::new(store))),
        Err(StoreError::Unavailable(reason)) => {
            output::note(format_args!(
                "warning: {reason}; fetching without the cache (or pass --no-cache)"
            ));
            Ok(None)
        }
        Err(error) => Err(Failure::usage(format!("{error}; or pass --no-cache"))),
    }
}

/// The file cache a token command would use, opened quietly: `None` for anything else
/// (`--no-cache`, Redis, `--env mock` without `--store`) and on any error, which the
/// command's own [`for_token`] then reports.
pub fn file_cache_quietly(
    args: &StoreArgs,
    env: Env,
    secret: &ClientSecret,
) -> Option<FileTokenStore> {
    if args.no_cache {
        return None;
    }
    let dir = match &args.store {
        Some(url) => PathBuf::from(url.strip_prefix(FILE_SCHEME)?),
        None if env == Env::Mock => return None,
        None => default_dir()?,
    };
    open_file(&dir, Some(secret)).ok()
}

/// `$XDG_CACHE_HOME/vipps-token` (when absolute, as the XDG spec asks), else
/// `$HOME/.cache/vipps-token`; `None` without either.
pub fn default_dir() -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join(CACHE_DIR_NAME))
}

/// The store at `url` (`redis://`, `rediss://` or `file:DIR`), the error as a message
/// that names the variable or flag at fault. Redis needs `VIPPS_TOKEN_STORE_KEY`; a
/// directory takes it when given, else a key derived from `secret`.
pub fn try_open(url: &str, secret: Option<&ClientSecret>) -> Result<Arc<dyn TokenStore>, String> {
    if let Some(dir) = url.strip_prefix(FILE_SCHEME) {
        let store = open_file(Path::new(dir), secret).map_err(|e| format!("--store: {e}"))?;
        return Ok(Arc::new(store));
    }
    let keys = keys_from_env()?.ok_or_else(|| {
        format!(
            "--store needs a sealing key in {KEY_VARIABLE}: base64 of 32 bytes, the same \
             for every process (make one with `openssl rand -base64 32`)"
        )
    })?;
    let config = config(keys)?;
    let store = match std::env::var_os(CA_VARIABLE) {
        Some(path) => {
            let pem = std::fs::read(&path).map_err(|error| {
                format!(
                    "{CA_VARIABLE}: could not read {}: {error}; give the path of a PEM file",
                    std::path::Path::new(&path).display()
                )
            })?;
            RedisTokenStore::with_ca(url, config, &pem)
                .map_err(|error| format!("--store with {CA_VARIABLE}: {error}"))?
        }
        None => RedisTokenStore::new(url, config).map_err(|error| format!("--store: {error}"))?,
    };
    Ok(Arc::new(store))
}

/// The file store in `dir`: sealed with `VIPPS_TOKEN_STORE_KEY` when given, else with a
/// key derived from `secret`.
pub fn open_file(dir: &Path, secret: Option<&ClientSecret>) -> Result<FileTokenStore, StoreError> {
    FileTokenStore::new(dir, file_config(secret)?)
}

/// The file store in `dir` if the directory exists, for listing and clearing: nothing is
/// created. Sealed as [`open_file`] seals, or without keys with a throwaway key, which can
/// list and remove records but opens none.
pub fn open_existing_file(dir: &Path) -> Result<Option<FileTokenStore>, StoreError> {
    FileTokenStore::open_existing(dir, file_config(None)?)
}

fn file_config(secret: Option<&ClientSecret>) -> Result<StoreConfig, StoreError> {
    let keys = match (keys_from_env().map_err(StoreError::Config)?, secret) {
        (Some(keys), _) => keys,
        (None, Some(secret)) => SealingKeys::from_client_secret(secret),
        (None, None) => SealingKeys::new(std::array::from_fn(|_| fastrand::u8(..)), None),
    };
    config(keys).map_err(StoreError::Config)
}

/// The keys in `VIPPS_TOKEN_STORE_KEY` (and the previous one), if given.
fn keys_from_env() -> Result<Option<SealingKeys>, String> {
    let Ok(current) = std::env::var(KEY_VARIABLE) else {
        return Ok(None);
    };
    let previous = std::env::var(PREVIOUS_KEY_VARIABLE).ok();
    SealingKeys::from_base64(
        &current,
        previous.as_deref(),
        KEY_VARIABLE,
        PREVIOUS_KEY_VARIABLE,
    )
    .map(Some)
    .map_err(|error| error.to_string())
}

/// The store's settings, with the key prefix of `VIPPS_TOKEN_STORE_PREFIX` if set: an
/// empty one is refused (it would make every file of a cache directory, every key of a
/// Redis, look like ours).
fn config(keys: SealingKeys) -> Result<StoreConfig, String> {
    let mut config = StoreConfig::new(keys);
    if let Some(prefix) = std::env::var_os(PREFIX_VARIABLE) {
        let prefix = prefix
            .into_string()
            .map_err(|_| format!("{PREFIX_VARIABLE} is not UTF-8: give plain text"))?;
        if prefix.is_empty() {
            return Err(format!(
                "{PREFIX_VARIABLE} is set but empty: unset it for the default prefix, or give \
                 a non-empty one"
            ));
        }
        config.key_prefix = prefix;
    }
    Ok(config)
}
