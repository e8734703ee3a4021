//! [`FileTokenStore`]: the store in a directory on one machine (feature `store`), no
//! server. One file per key name holds the sealed record (the Redis store's format) behind
//! a small header with its expiry. Files are written whole to a temporary file and renamed,
//! so a reader sees the old record or the new one, never half of one.
//!
//! The lease is an OS file lock (`flock` on Unix) held open by this process: the kernel
//! releases it when the holder exits or is killed, so there is no stale lease to wait out.

use std::{
    collections::HashMap,
    fmt::Write as _,
    fs::{self, File, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

use super::{StoreConfig, StoreError, TokenStore};
use crate::{flow::Flow, sync::lock};

/// Marks a cache file of this library, and its format version.
const FILE_MAGIC: &[u8; 4] = b"vatf";
const FILE_VERSION: u8 = 1;
/// Magic, version, expiry (Unix milliseconds, big endian), flow.
const FILE_HEADER_BYTES: usize = FILE_MAGIC.len() + 1 + 8 + 1;
/// Files being written; never read as records.
const TEMP_PREFIX: &str = ".tmp-";
/// The directory's own lock: a record's compare-and-delete against a concurrent rename.
const DIR_LOCK: &str = ".lock";
/// The suffix of lease names (see `identity.rs`): their files are locks, not records.
const LEASE_SUFFIX: &str = ":lease";
/// A temporary file older than this was left by a writer that died.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);
/// The first and the longest pause between tries of a lock another process holds.
const LOCK_FIRST_PAUSE: Duration = Duration::from_millis(1);
const LOCK_MAX_PAUSE: Duration = Duration::from_millis(16);

/// A token store in a directory: the CLI's cache, or one machine's cron jobs and scripts.
///
/// The directory is created `0700` if missing, and refused if other users can write to it;
/// files are `0600`. A lease is an OS file lock, released by the kernel when its holder
/// dies; a waiter blocks on it, within half the operation timeout per try, then reads the
/// record. `Debug` shows the directory and the keys' public ids, never a key.
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
    dir: PathBuf,
    config: StoreConfig,
    /// The leases this process holds, by name: dropping one closes its file, which unlocks.
    leases: Arc<Mutex<HashMap<String, HeldLease>>>,
}

/// A lease held by this process.
struct HeldLease {
    holder: Vec<u8>,
    /// Open and locked; the lock lives as long as this file stays open.
    _file: File,
    expires: Instant,
}

impl std::fmt::Debug for FileTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTokenStore")
            .field("dir", &self.dir)
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
    /// The token's flow, when the file says it.
    pub flow: Option<Flow>,
    /// When the record expires; `None` for a file that is not a record of this library
    /// (corrupt, truncated, foreign), which the next fetch replaces.
    pub expires_at: Option<SystemTime>,
}

impl FileTokenStore {
    /// A store in `dir`, created (`0700`) if missing. `StoreError::Config` when `dir` is not
    /// a directory or other users can write to it; `StoreError::Unavailable` when it
    /// cannot be created (a read-only disk, no permission).
    pub fn new(dir: impl Into<PathBuf>, config: StoreConfig) -> Result<Self, StoreError> {
        let dir = dir.into();
        match create_private_dir(&dir) {
            // A file in its place: `check_private` says so.
            Err(error) if error.kind() != io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Unavailable(format!(
                    "cannot create the token cache directory {}: {error}",
                    dir.display()
                )));
            }
            _ => {}
        }
        check_private(&dir)?;
        Ok(Self {
            dir,
            config,
            leases: Arc::default(),
        })
    }

    /// The directory the records are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The records under this store's key prefix, by name (leases and files being written
    /// left out). For listing: it opens nothing.
    pub fn entries(&self) -> Result<Vec<FileEntry>, StoreError> {
        let mut entries = Vec::new();
        for (name, path) in self.own_files()? {
            if name.ends_with(LEASE_SUFFIX) {
                continue;
            }
            let header = read_header(&path);
            entries.push(FileEntry {
                name,
                flow: header.as_ref().and_then(|h| h.flow),
                expires_at: header.map(|h| h.expires_at),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Removes every record and lease file under this store's key prefix, and any file
    /// left half written; the number of records removed. A lease held meanwhile stays
    /// held (its file is open); at worst one more fetch follows.
    pub fn clear(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        for (name, path) in self.own_files()? {
            fs::remove_file(&path).map_err(|error| self.failed("remove", &path, error))?;
            removed += usize::from(!name.ends_with(LEASE_SUFFIX));
        }
        for path in self.temp_files()? {
            let _ = fs::remove_file(path);
        }
        Ok(removed)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(file_name(key))
    }

    fn failed(&self, operation: &str, path: &Path, error: io::Error) -> StoreError {
        StoreError::Unavailable(format!(
            "cannot {operation} {}: {error} (a read-only or full disk, or no permission?)",
            path.display()
        ))
    }

    /// The files of this store (key names under its prefix), with their paths.
    fn own_files(&self) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let listing = fs::read_dir(&self.dir).map_err(|e| self.failed("list", &self.dir, e))?;
        Ok(listing
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = key_name(entry.file_name().to_str()?)?;
                name.starts_with(&self.config.key_prefix)
                    .then(|| (name, entry.path()))
            })
            .collect())
    }

    fn temp_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let listing = fs::read_dir(&self.dir).map_err(|e| self.failed("list", &self.dir, e))?;
        Ok(listing
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
            .map(|entry| entry.path())
            .collect())
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.failed("read", &path, error)),
        };
        let (header, record) = parse(&bytes)?;
        if header.expires_at <= SystemTime::now() {
            // The normal end of a cached token, not a fault: the next fetch replaces it.
            tracing::debug!(path = %path.display(), "cached vipps token record expired");
            return Ok(None);
        }
        Ok(Some(record.to_vec()))
    }

    fn write(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let header = Header {
            expires_at: SystemTime::now() + ttl,
            flow: self.flow_of(key, value),
        };
        let mut bytes = header.encode();
        bytes.extend_from_slice(value);
        let temp = self
            .dir
            .join(format!("{TEMP_PREFIX}{:032x}", fastrand::u128(..)));
        let written = write_private(&temp, &bytes).and_then(|()| {
            let _dir_lock = self.lock_dir()?;
            fs::rename(&temp, self.path(key))
        });
        if let Err(error) = written {
            let _ = fs::remove_file(&temp);
            return Err(self.failed("write", &self.path(key), error));
        }
        self.prune();
        Ok(())
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

    /// Removes expired records and files left half written by a writer that died. Best
    /// effort: whatever it cannot remove stays a miss.
    fn prune(&self) {
        let now = SystemTime::now();
        for (name, path) in self.own_files().unwrap_or_default() {
            let expired = read_header(&path).is_some_and(|header| header.expires_at <= now);
            if expired && !name.ends_with(LEASE_SUFFIX) {
                let _ = fs::remove_file(path);
            }
        }
        for path in self.temp_files().unwrap_or_default() {
            let stale = fs::metadata(&path)
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| {
                    now.duration_since(modified).unwrap_or_default() > STALE_TEMP_AGE
                });
            if stale {
                let _ = fs::remove_file(path);
            }
        }
    }

    /// Takes the directory's lock, held for a rename or a compare-and-delete: microseconds.
    fn lock_dir(&self) -> io::Result<File> {
        let file = open_lock_file(&self.dir.join(DIR_LOCK))?;
        file.lock()?;
        Ok(file)
    }

    /// The lease: an OS lock on the lease's file, waited for within half the operation
    /// timeout (the caller looks at the record between tries).
    async fn take_lease(
        &self,
        key: &str,
        holder: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.drop_expired_leases();
        let path = self.path(key);
        let file = open_lock_file(&path).map_err(|error| self.failed("lock", &path, error))?;
        let deadline = Instant::now() + self.config.operation_timeout / 2;
        let mut pause = LOCK_FIRST_PAUSE;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(error)) => {
                    return Err(self.failed("lock", &path, error));
                }
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LOCK_MAX_PAUSE);
        }
        let expires = Instant::now() + ttl;
        lock(&self.leases).insert(
            key.to_owned(),
            HeldLease {
                holder: holder.to_vec(),
                _file: file,
                expires,
            },
        );
        expire_lease_later(Arc::downgrade(&self.leases), key, holder, expires);
        Ok(true)
    }

    /// A lease whose holder forgot it (its task was cancelled) lasts its TTL, as in Redis.
    fn drop_expired_leases(&self) {
        let now = Instant::now();
        lock(&self.leases).retain(|_, lease| lease.expires > now);
    }

    fn delete_if_equal_now(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        {
            let mut leases = lock(&self.leases);
            if let Some(lease) = leases.get(key) {
                let ours = lease.holder == value;
                if ours {
                    leases.remove(key);
                }
                return Ok(ours);
            }
        }
        let path = self.path(key);
        let _dir_lock = self
            .lock_dir()
            .map_err(|error| self.failed("lock", &self.dir, error))?;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(self.failed("read", &path, error)),
        };
        if parse(&bytes).is_ok_and(|(_, record)| record == value) {
            fs::remove_file(&path).map_err(|error| self.failed("remove", &path, error))?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// Releases the lease at `expires` if `holder` still holds it, on the current runtime (if
/// any; otherwise the next `put_if_absent` of this store drops it). The moment is fixed
/// here, not when the task first runs.
fn expire_lease_later(
    leases: Weak<Mutex<HashMap<String, HeldLease>>>,
    key: &str,
    holder: &[u8],
    expires: Instant,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (key, holder) = (key.to_owned(), holder.to_vec());
    runtime.spawn(async move {
        tokio::time::sleep_until(expires).await;
        if let Some(leases) = leases.upgrade() {
            let mut leases = lock(&leases);
            if leases.get(&key).is_some_and(|lease| lease.holder == holder) {
                leases.remove(&key);
            }
        }
    });
}

impl TokenStore for FileTokenStore {
    // Reads and writes of small local files take microseconds: done in place, not on a
    // blocking thread, which would cost more than the work.
    /// A lease is not a record: its file is an empty lock file. Its value is known only to
    /// the process holding it (ours, or none that we can read: the kernel tells who holds it
    /// only by refusing the lock).
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        async move {
            if key.ends_with(LEASE_SUFFIX) {
                return Ok(lock(&self.leases)
                    .get(key)
                    .map(|lease| lease.holder.clone()));
            }
            self.read(key)
        }
        .boxed()
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move { self.write(key, &value, ttl) }.boxed()
    }

    /// An OS lock on the file of `key`, held by this process until
    /// [`delete_if_equal`](TokenStore::delete_if_equal) with the same value, `ttl`, or the
    /// process's end; the value is known to this process only.
    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.take_lease(key, value, ttl).boxed()
    }

    fn delete_if_equal<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        async move { self.delete_if_equal_now(key, value) }.boxed()
    }

    fn config(&self) -> &StoreConfig {
        &self.config
    }
}

/// What a cache file says about its record, in the clear.
struct Header {
    expires_at: SystemTime,
    flow: Option<Flow>,
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let millis = self
            .expires_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let flow = match self.flow {
            None => 0,
            Some(Flow::Standard) => 1,
            Some(Flow::Partner) => 2,
            Some(Flow::Legacy) => 3,
        };
        let mut bytes = Vec::with_capacity(FILE_HEADER_BYTES);
        bytes.extend_from_slice(FILE_MAGIC);
        bytes.push(FILE_VERSION);
        bytes.extend_from_slice(&millis.to_be_bytes());
        bytes.push(flow);
        bytes
    }
}

/// The header and the sealed record of a cache file.
fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), StoreError> {
    if bytes.len() < FILE_HEADER_BYTES || !bytes.starts_with(FILE_MAGIC) {
        return Err(StoreError::Corrupt(
            "the cache file is truncated or not one of this library's; the next fetch \
             replaces it"
                .to_owned(),
        ));
    }
    let version = bytes[FILE_MAGIC.len()];
    if version != FILE_VERSION {
        return Err(StoreError::Foreign(format!(
            "cache file format version {version}, this build reads version {FILE_VERSION}; \
             the next fetch replaces it"
        )));
    }
    let (header, record) = bytes.split_at(FILE_HEADER_BYTES);
    let mut millis = [0; 8];
    millis.copy_from_slice(&header[FILE_MAGIC.len() + 1..FILE_MAGIC.len() + 9]);
    let expires_at = UNIX_EPOCH
        .checked_add(Duration::from_millis(u64::from_be_bytes(millis)))
        .unwrap_or(UNIX_EPOCH);
    let flow = match header[FILE_HEADER_BYTES - 1] {
        1 => Some(Flow::Standard),
        2 => Some(Flow::Partner),
        3 => Some(Flow::Legacy),
        _ => None,
    };
    Ok((Header { expires_at, flow }, record))
}

/// The header of the file at `path`, if it is a cache file of this library.
fn read_header(path: &Path) -> Option<Header> {
    let bytes = fs::read(path).ok()?;
    parse(&bytes).ok().map(|(header, _)| header)
}

/// A key name as a file name: letters, digits, `-`, `_`, `:` (Unix) and `.` (not first)
/// as they are, any other byte as `%XX`; so no name can leave the directory or collide
/// with the store's own dot files.
fn file_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    for (index, byte) in key.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_')
            || (byte == b':' && cfg!(unix))
            || (byte == b'.' && index > 0);
        if plain {
            name.push(char::from(byte));
        } else {
            let _ = write!(name, "%{byte:02X}");
        }
    }
    name
}

/// The key name of a file name made by [`file_name`]; `None` for any other file.
fn key_name(file: &str) -> Option<String> {
    if file.starts_with('.') {
        return None;
    }
    let mut bytes = Vec::with_capacity(file.len());
    let mut rest = file.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Creates `dir` and any missing parent, `0700` on Unix.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Refuses a directory that other users can write to: they could remove records, or put
/// back an old one.
fn check_private(dir: &Path) -> Result<(), StoreError> {
    let meta = fs::metadata(dir).map_err(|error| {
        StoreError::Unavailable(format!(
            "cannot read the token cache directory {}: {error}",
            dir.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(StoreError::Config(format!(
            "the token cache {} is not a directory: remove it, or choose another directory",
            dir.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(StoreError::Config(format!(
                "the token cache directory {} can be written by other users (mode {mode:o}): \
                 make it private with `chmod 700 {}`, or choose another directory",
                dir.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path`, `0600` on Unix, and flushes it to disk before
/// it is renamed into place.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Opens (creating, `0600`) a file that exists to be locked.
fn open_lock_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_in_the_directory_and_read_back() {
        for key in [
            "vipps-access-token:0a1b",
            "a/../../etc/passwd",
            ".hidden",
            "p%x",
            "ü",
        ] {
            let name = file_name(key);
            assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
            assert_eq!(key_name(&name).as_deref(), Some(key));
        }
        assert_eq!(key_name(".lock"), None);
        assert_eq!(key_name("bad%4"), None);
    }

    #[test]
    fn a_header_reads_back_and_a_short_file_is_corrupt() {
        let header = Header {
            expires_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            flow: Some(Flow::Partner),
        };
        let mut bytes = header.encode();
        bytes.extend_from_slice(b"sealed");
        let (read, record) = parse(&bytes).unwrap();
        assert_eq!(read.expires_at, header.expires_at);
        assert_eq!(read.flow, Some(Flow::Partner));
        assert_eq!(record, b"sealed");
        assert!(matches!(
            parse(&bytes[..FILE_HEADER_BYTES - 1]),
            Err(StoreError::Corrupt(_))
        ));
        bytes[FILE_MAGIC.len()] = 9;
        assert!(matches!(parse(&bytes), Err(StoreError::Foreign(_))));
    }
}
