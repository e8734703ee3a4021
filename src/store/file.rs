//! [`FileTokenStore`]: the store in a directory on one machine (feature `store`), no
//! server. One file per key name holds the sealed record (the Redis store's format) behind
//! a small header with its expiry (`file_format.rs`). Files are written whole to a
//! temporary file and renamed, so a reader sees the old record or the new one, never half
//! of one. The directory is opened once and used through that handle (`file_dir.rs`); the
//! lease is a lock file (`file_lease.rs`); housekeeping touches only files that are
//! provably ours (`file_names.rs`).

use std::{
    fs::File,
    io::{self, Read as _, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use futures_util::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

use super::{
    StoreConfig, StoreError, TokenIdentity, TokenStore,
    file_dir::CacheDir,
    file_format::{self, Header, Peek},
    file_lease::{self, Leases},
    file_names::{self, Kind},
};
use crate::{
    client::{Client, source::TokenSource},
    flow::Flow,
    sync::lock,
    wire::token::AccessToken,
};

/// A temporary file older than this was left by a writer that died; a younger one may be
/// being written.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);
/// Saves prune the directory at most this often per store: pruning opens every file.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// A token store in a directory: the CLI's cache, or one machine's cron jobs and scripts.
///
/// The directory is created `0700` if missing, and used only if it belongs to this user,
/// is not a symbolic link and no other user can write to it; it is opened once, and every
/// file is reached through that open directory, so swapping the path for a link later
/// changes nothing. Files are `0600`; what stands at one of the store's names and is not a
/// regular file (a link, a FIFO, an empty directory) is removed, never followed, and
/// replaced, with a warning. A lease is an OS file lock, released by the kernel when its
/// holder dies and held for the whole fetch; a waiter blocks on it, within half the
/// operation timeout per try, then reads the record. A holder that lives but has stopped
/// (SIGSTOP, a debugger, a paused VM) stops beating its heartbeat (the lock file's mtime,
/// renewed every third of the lease TTL): two TTLs later one waiter takes its lease over,
/// without the lock, and fetches, as a Redis lease would expire. `Debug` shows the
/// directory and the keys' public ids, never a key.
///
/// ```no_run
/// use vipps_access_token::{ClientSecret, store::{FileTokenStore, SealingKeys, StoreConfig}};
///
/// # fn run() -> Result<(), vipps_access_token::store::StoreError> {
/// let keys = SealingKeys::from_client_secret(&ClientSecret::new("Y8Kteew6GE2ZmeycEt6egg=="));
/// let store = FileTokenStore::new("/var/cache/my-app/vipps", StoreConfig::new(keys))?;
/// # let _ = store; Ok(()) }
/// ```
pub struct FileTokenStore {
    /// Shared by the stores [`Self::with_sealing_keys`] makes: one open handle.
    dir: Arc<CacheDir>,
    config: StoreConfig,
    leases: Leases,
    /// When a save last pruned the directory (tokio's clock).
    last_prune: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for FileTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTokenStore")
            .field("dir", &self.dir.path())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One file of a [`FileTokenStore`], as `vipps-token cache list` shows it: nothing secret,
/// nothing that says whose token it is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileEntry {
    /// The key name: the key prefix and an HMAC.
    pub name: String,
    /// A token's record, or a failure marker.
    pub kind: FileEntryKind,
    /// The token's flow, when the file says it.
    pub flow: Option<Flow>,
    /// When the record expires; `None` for a file that is not a record of this library
    /// (corrupt, truncated, foreign), which the next fetch replaces.
    pub expires_at: Option<SystemTime>,
}

/// What a [`FileEntry`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileEntryKind {
    /// A sealed token.
    Token,
    /// A failure marker: a fetch for this token failed moments ago, and the processes
    /// that waited for it were told; it expires within seconds.
    FailureMarker,
}

impl FileTokenStore {
    /// A store in `dir`, created (`0700`) if missing. `StoreError::Config` when `dir` is not
    /// a directory, other users can write to it, or the key prefix is empty;
    /// `StoreError::Unavailable` when it cannot be created (a read-only disk, no
    /// permission), belongs to another user, or is a symbolic link.
    pub fn new(dir: impl Into<PathBuf>, config: StoreConfig) -> Result<Self, StoreError> {
        check_prefix(&config)?;
        Ok(Self::with_dir(CacheDir::create(&dir.into())?, config))
    }

    /// The store in `dir` if the directory exists (nothing is created: for listing and
    /// clearing), `None` if it does not; refused as [`Self::new`] refuses.
    pub fn open_existing(
        dir: impl AsRef<Path>,
        config: StoreConfig,
    ) -> Result<Option<Self>, StoreError> {
        check_prefix(&config)?;
        let dir = CacheDir::existing(dir.as_ref())?;
        Ok(dir.map(|dir| Self::with_dir(dir, config)))
    }

    fn with_dir(dir: CacheDir, config: StoreConfig) -> Self {
        Self {
            dir: Arc::new(dir),
            config,
            leases: Leases::default(),
            last_prune: Arc::default(),
        }
    }

    /// A store on the same directory (its one open handle, this process's leases in it)
    /// that seals with `keys`: a token broker keeps each caller's records under a key
    /// derived from that caller's own secret ([`SealingKeys::from_client_secret`]) without
    /// a file descriptor per caller.
    ///
    /// [`SealingKeys::from_client_secret`]: super::SealingKeys::from_client_secret
    pub fn with_sealing_keys(&self, keys: super::SealingKeys) -> Self {
        Self {
            dir: self.dir.clone(),
            config: StoreConfig {
                keys,
                key_prefix: self.config.key_prefix.clone(),
                operation_timeout: self.config.operation_timeout,
                connect_timeout: self.config.connect_timeout,
                lease_ttl: self.config.lease_ttl,
            },
            leases: self.leases.clone(),
            last_prune: self.last_prune.clone(),
        }
    }

    /// The token this cache holds for `client` and `source` with more than `margin` (and
    /// the coarse clocks' tick, 20 ms) of life left, read at once on this thread: no
    /// runtime, no HTTP client, no lease.
    ///
    /// For a short-lived process (a CLI run, a cron job) that skips building a
    /// [`TokenProvider`](crate::TokenProvider) when the cache can answer: a provider given
    /// this store serves the same record, with `margin` its
    /// [`RefreshPolicy::expiry_margin`](crate::RefreshPolicy::expiry_margin). `None` on a
    /// miss, a record with too little life left, or one that cannot be read or opened,
    /// quietly: a provider with this store then fetches, and says why.
    ///
    /// ```no_run
    /// use vipps_access_token::{
    ///     ClientSecret, Environment, RefreshPolicy, StandardCredentials, TokenSource,
    ///     Client, store::{FileTokenStore, SealingKeys, StoreConfig},
    /// };
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let credentials = StandardCredentials::new(
    ///     "fb492b5e-7907-4d83-ba20-c7fb60ca35de",
    ///     "Y8Kteew6GE2ZmeycEt6egg==",
    ///     "0f14ebcab0ec4b29ae0cb90d91b4a84a",
    /// );
    /// let keys = SealingKeys::from_client_secret(&credentials.client_secret);
    /// let store = FileTokenStore::new("/var/cache/my-app/vipps", StoreConfig::new(keys))?;
    /// let client = Client::new(Environment::Test)?; // builds no HTTP client until it fetches
    /// let margin = RefreshPolicy::default().expiry_margin;
    /// match store.fresh_token(&client, &TokenSource::Standard(credentials), margin) {
    ///     Some(token) => println!("{}", token.secret().expose_secret()),
    ///     None => { /* build a TokenProvider with this store and ask it */ }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn fresh_token(
        &self,
        client: &Client,
        source: &TokenSource,
        margin: Duration,
    ) -> Option<AccessToken> {
        let identity = TokenIdentity::new(source, client);
        super::shared_fetch::fresh_at_once(&self.config, &identity, margin, |name| {
            self.get_now(name)
        })
    }

    /// The directory the records are in, as it was given.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The token records and failure markers under this store's key prefix, by name
    /// (leases, probes and files being written left out). For listing: it reads headers
    /// only.
    pub fn entries(&self) -> Result<Vec<FileEntry>, StoreError> {
        let mut entries = Vec::new();
        for (file, key, kind) in self.own_files()? {
            let kind = match kind {
                Kind::Record => FileEntryKind::Token,
                Kind::FailureMarker => FileEntryKind::FailureMarker,
                Kind::Lease | Kind::Probe => continue,
            };
            let header = match self.peek(&file) {
                Some(Peek::Ours(header)) => header,
                _ => None,
            };
            entries.push(FileEntry {
                name: key,
                kind,
                flow: header.as_ref().and_then(|h| h.flow),
                expires_at: header.map(|h| h.expires_at),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// What the first bytes of `file` say, if it can be read.
    fn peek(&self, file: &str) -> Option<Peek> {
        let opened = self.dir.open_file(file).ok()??;
        file_format::peek(&opened).ok()
    }

    /// Removes every file of this store that is provably its own: records, markers and
    /// probes of its name shape with its header, lease files nobody holds, and files left
    /// half written long ago. The number of token records removed. A file of another
    /// shape, prefix or content is left alone.
    pub fn clear(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        for (file, _, kind) in self.own_files()? {
            let gone = match kind {
                Kind::Lease => file_lease::remove_if_free(&self.dir, &file),
                Kind::Record | Kind::FailureMarker | Kind::Probe => {
                    self.remove_ours_if(&file, |_| true)
                }
            };
            let gone = gone.map_err(|error| self.failed("remove", &file, error))?;
            removed += usize::from(gone && kind == Kind::Record);
        }
        self.remove_stale_temp_files();
        Ok(removed)
    }

    /// The store's error for `error`: the system's own errors with their usual causes;
    /// the store's (a directory in the way of one of its files) say what to do themselves.
    fn failed(&self, operation: &str, file: &str, error: io::Error) -> StoreError {
        let guess = if error.raw_os_error().is_some() {
            " (a read-only or full disk, or no permission?)"
        } else {
            ""
        };
        StoreError::Unavailable(format!(
            "cannot {operation} {}: {error}{guess}",
            self.dir.path().join(file).display()
        ))
    }

    /// The files of this store's name shapes: file name, key name, kind.
    fn own_files(&self) -> Result<Vec<(String, String, Kind)>, StoreError> {
        let names = self
            .dir
            .names()
            .map_err(|error| self.failed("list", ".", error))?;
        Ok(names
            .into_iter()
            .filter_map(|file| {
                let key = file_names::key_name(&file)?;
                let kind = file_names::kind_of(&key, &self.config.key_prefix)?;
                Some((file, key, kind))
            })
            .collect())
    }

    /// Removes `file` if it starts with this library's magic and `remove` accepts its
    /// header (`None`: another version's, or truncated); under the directory's lock, so
    /// that a record renamed into place meanwhile is not the one removed.
    fn remove_ours_if(
        &self,
        file: &str,
        remove: impl Fn(Option<&Header>) -> bool,
    ) -> io::Result<bool> {
        let _dir_lock = self.lock_dir()?;
        let Some(opened) = self.dir.open_file(file)? else {
            return Ok(false);
        };
        let wanted = match file_format::peek(&opened)? {
            Peek::Foreign => false,
            Peek::Ours(header) => remove(header.as_ref()),
        };
        if wanted {
            self.dir.remove(file)?;
        }
        Ok(wanted)
    }

    /// Removes temporary files of our shape older than [`STALE_TEMP_AGE`]: their writer
    /// died (a write takes microseconds). Best effort.
    fn remove_stale_temp_files(&self) {
        let now = SystemTime::now();
        for file in self.dir.names().unwrap_or_default() {
            if !file_names::is_temp_name(&file) {
                continue;
            }
            let stale = self.dir.open_file(&file).ok().flatten().is_some_and(|f| {
                f.metadata()
                    .and_then(|meta| meta.modified())
                    .is_ok_and(|at| now.duration_since(at).unwrap_or_default() > STALE_TEMP_AGE)
            });
            if stale {
                let _ = self.dir.remove(&file);
            }
        }
    }

    /// Removes expired records, markers and probes, lease files nobody holds, and stale
    /// temporary files; at most once per [`PRUNE_INTERVAL`] per store, so that a save does
    /// not open every file. Best effort: whatever it cannot remove stays a miss.
    fn prune_now_and_then(&self) {
        {
            let mut last = lock(&self.last_prune);
            let now = Instant::now();
            if last.is_some_and(|at| now.saturating_duration_since(at) < PRUNE_INTERVAL) {
                return;
            }
            *last = Some(now);
        }
        let now = SystemTime::now();
        for (file, _, kind) in self.own_files().unwrap_or_default() {
            let _ = match kind {
                Kind::Lease => file_lease::remove_if_free(&self.dir, &file),
                Kind::Record | Kind::FailureMarker | Kind::Probe => {
                    self.remove_ours_if(&file, |header| header.is_some_and(|h| h.expires_at <= now))
                }
            };
        }
        self.remove_stale_temp_files();
    }

    /// Takes the directory's lock, held for a rename or a compare-and-delete (a record's,
    /// against a concurrent rename): microseconds.
    fn lock_dir(&self) -> io::Result<File> {
        self.dir.lock()
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let file = file_names::file_name(key);
        let bytes = match self.dir.open_file(&file).and_then(|f| read_all(f.as_ref())) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(error) => return Err(self.failed("read", &file, error)),
        };
        let (header, record) = file_format::parse(&bytes)?;
        if header.expires_at <= SystemTime::now() {
            // The normal end of a cached token, not a fault: the next fetch replaces it.
            tracing::debug!(file = %file, "cached vipps token record expired");
            return Ok(None);
        }
        Ok(Some(record.to_vec()))
    }

    fn write(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        if file_names::is_lease(key) {
            return Err(lease_is_a_lock(key));
        }
        let header = Header {
            expires_at: file_format::expiry_after(ttl),
            flow: self.flow_of(key, value),
        };
        let mut bytes = header.encode();
        bytes.extend_from_slice(value);
        let (file, temp) = (file_names::file_name(key), file_names::new_temp_name());
        let written = self.write_new(&temp, &bytes).and_then(|()| {
            let _dir_lock = self.lock_dir()?;
            self.dir.rename(&temp, &file)
        });
        if let Err(error) = written {
            let _ = self.dir.remove(&temp);
            return Err(self.failed("write", &file, error));
        }
        self.prune_now_and_then();
        Ok(())
    }

    /// Writes `bytes` to the new file `temp` and flushes it to disk before it is renamed
    /// into place.
    fn write_new(&self, temp: &str, bytes: &[u8]) -> io::Result<()> {
        let mut file = self.dir.create_new(temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// The flow of a record this store can open, for `cache list`; written in the clear,
    /// since it says nothing about whose token it is.
    fn flow_of(&self, key: &str, sealed: &[u8]) -> Option<Flow> {
        #[derive(serde::Deserialize)]
        struct FlowOnly {
            flow: String,
        }
        let plain = self.config.keys.open(key, sealed).ok()?;
        let record: FlowOnly = serde_json::from_slice(&plain).ok()?;
        match record.flow.as_str() {
            "standard" => Some(Flow::Standard),
            "partner" => Some(Flow::Partner),
            "legacy" => Some(Flow::Legacy),
            _ => None,
        }
    }

    /// A lease name: whoever holds it, here or in another process. Any other name: its
    /// record.
    fn get_now(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !file_names::is_lease(key) {
            return self.read(key);
        }
        if let Some(holder) = self.leases.holder(key) {
            return Ok(Some(holder));
        }
        let file = file_names::file_name(key);
        file_lease::holder_elsewhere(&self.dir, &file)
            .map_err(|error| self.failed("read", &file, error))
    }

    fn delete_if_equal_now(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        if let Some(released) = self.leases.release(key, value) {
            return Ok(released);
        }
        if file_names::is_lease(key) {
            return Ok(false); // another process's lock: only its holder lets go
        }
        let file = file_names::file_name(key);
        let deleted = (|| {
            let _dir_lock = self.lock_dir()?;
            let Some(bytes) = read_all(self.dir.open_file(&file)?.as_ref())? else {
                return Ok(false);
            };
            if !file_format::parse(&bytes).is_ok_and(|(_, record)| record == value) {
                return Ok(false);
            }
            self.dir.remove(&file)?;
            Ok(true)
        })();
        deleted.map_err(|error| self.failed("remove", &file, error))
    }
}

impl TokenStore for FileTokenStore {
    // Reads and writes of small local files take microseconds: done in place, not on a
    // blocking thread, which would cost more than the work.
    /// A lease name gives its holder: this process's, or the one another process wrote
    /// into the lease file while it holds the lock (a free lock: `None`).
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        async move { self.get_now(key) }.boxed()
    }

    /// Refused for a lease name: a lease file is a lock, never replaced.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move { self.write(key, &value, ttl) }.boxed()
    }

    /// An OS lock on the file of `key`, held by this process until
    /// [`delete_if_equal`](TokenStore::delete_if_equal) with the same value, `ttl` without
    /// a renewal, or the process's end; `value` is written into the file for others to
    /// read. A takeover: when the lock's holder has not beaten its heartbeat (the file's
    /// mtime, at each renewal) for two `ttl`s, it is stalled, and the lease is granted
    /// without the lock, as a Redis lease expires; the lock is taken at a later renewal,
    /// once the stalled holder lets go.
    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        async move {
            let wait = self.config.operation_timeout / 2;
            self.leases
                .take(&self.dir, key, value, ttl, wait)
                .await
                .map_err(|error| self.failed("lock", &file_names::file_name(key), error))
        }
        .boxed()
    }

    fn delete_if_equal<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        async move { self.delete_if_equal_now(key, value) }.boxed()
    }

    /// A lease is renewed in place: its deadline in this process moves and its heartbeat
    /// (the lock file's mtime) is beaten, so that waiters can tell a live holder from a
    /// stalled one; true when `value` holds the lease this process holds and the file still
    /// names it (false once another process took it over). Any other key: read, compare,
    /// write (not atomic).
    fn extend_if_equal<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        async move {
            if file_names::is_lease(key) {
                return self
                    .leases
                    .extend(&self.dir, key, value, ttl)
                    .map_err(|error| self.failed("renew", &file_names::file_name(key), error));
            }
            if self.read(key)?.as_deref() != Some(value) {
                return Ok(false);
            }
            self.write(key, value, ttl)?;
            Ok(true)
        }
        .boxed()
    }

    fn config(&self) -> &StoreConfig {
        &self.config
    }
}

/// Everything in `file`, if there is one.
fn read_all(file: Option<&File>) -> io::Result<Option<Vec<u8>>> {
    let Some(mut file) = file else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// An empty key prefix would make every file of the directory look like ours.
fn check_prefix(config: &StoreConfig) -> Result<(), StoreError> {
    if config.key_prefix.is_empty() {
        return Err(StoreError::Config(
            "the key prefix is empty: the file store needs one to tell its files from \
             others; keep the default, or set a non-empty prefix"
                .to_owned(),
        ));
    }
    Ok(())
}

fn lease_is_a_lock(key: &str) -> StoreError {
    StoreError::Config(format!(
        "{key} is a lease: its file is a lock, never written as a record"
    ))
}
