//! The file store's directory, opened once and trusted once: it must belong to the
//! effective user, not be a symbolic link, and not be writable by others. Every file
//! operation is then relative to that open handle (`openat`, `renameat`, `unlinkat`, never
//! following a link), not to its path: a directory swapped for a link after it was opened
//! cannot send a write or a removal anywhere else. What stands at one of the store's own
//! names and is not a regular file (a link, a FIFO, a socket, a device, an empty
//! directory) is removed, never followed, and a regular file made in its place, with a
//! warning saying what was found; a directory with files in it is left, and named.

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
};

use super::StoreError;

/// The directory's own lock file: held for a rename, a compare-and-delete, or a lease's
/// takeover (microseconds).
const DIR_LOCK: &str = ".lock";

/// An open, trusted cache directory.
pub(super) struct CacheDir {
    path: PathBuf,
    #[cfg(unix)]
    handle: File,
    /// The file store needs the `*at` calls of Unix; elsewhere no directory opens.
    #[cfg(not(unix))]
    never: std::convert::Infallible,
}

impl CacheDir {
    /// Opens `path`, created (`0700`, with any missing parent) if missing.
    pub(super) fn create(path: &Path) -> Result<Self, StoreError> {
        if let Err(error) = create_private_dir(path) {
            // Something in its place: opening it says what.
            if error.kind() != io::ErrorKind::AlreadyExists {
                return Err(StoreError::Unavailable(format!(
                    "cannot create the token cache directory {}: {error}",
                    path.display()
                )));
            }
        }
        Self::open(path)
    }

    /// Opens `path` if it exists; `None` when it does not (nothing is created).
    pub(super) fn existing(path: &Path) -> Result<Option<Self>, StoreError> {
        match path.symlink_metadata() {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            _ => Self::open(path).map(Some),
        }
    }

    /// The path the directory was opened at.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the directory's lock, waiting for it.
    pub(super) fn lock(&self) -> io::Result<File> {
        let file = self.open_lock(DIR_LOCK)?;
        file.lock()?;
        Ok(file)
    }

    /// Takes the directory's lock if nobody holds it; `None` when someone does.
    pub(super) fn try_lock(&self) -> io::Result<Option<File>> {
        let file = self.open_lock(DIR_LOCK)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

#[cfg(unix)]
impl CacheDir {
    fn open(path: &Path) -> Result<Self, StoreError> {
        use rustix::fs::{Mode, OFlags};
        use std::os::unix::fs::MetadataExt as _;

        let unreadable = |error: io::Error| {
            StoreError::Unavailable(format!(
                "cannot read the token cache directory {}: {error}",
                path.display()
            ))
        };
        let link = path.symlink_metadata().map_err(unreadable)?;
        if link.file_type().is_symlink() {
            return Err(symlink_refused(path));
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let handle = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            // Swapped for a link since we looked.
            Err(rustix::io::Errno::LOOP) => return Err(symlink_refused(path)),
            Err(rustix::io::Errno::NOTDIR) => return Err(not_a_directory(path)),
            Err(error) => return Err(unreadable(error.into())),
        };
        // The checks that count are on the handle: what we opened is what we use.
        let meta = handle.metadata().map_err(unreadable)?;
        if !meta.is_dir() {
            return Err(not_a_directory(path));
        }
        let owner = meta.uid();
        let me = rustix::process::geteuid().as_raw();
        if owner != me {
            return Err(StoreError::Unavailable(format!(
                "the token cache directory {} is owned by user {owner}, not by this user \
                 ({me}): that user could remove or replace its records; use a directory of \
                 your own",
                path.display()
            )));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(StoreError::Config(format!(
                "the token cache directory {} can be written by other users (mode {mode:o}): \
                 make it private with `chmod 700 {}`, or choose another directory",
                path.display(),
                path.display()
            )));
        }
        Ok(Self {
            path: path.to_owned(),
            handle,
        })
    }

    /// The names in the directory (those that are not UTF-8 left out: none is ours).
    pub(super) fn names(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.handle)? {
            if let Ok(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// The regular file `name`, open for reading; `None` when there is none, or only a
    /// link, a directory or a device by that name (never opened through, never ours).
    pub(super) fn open_file(&self, name: &str) -> io::Result<Option<File>> {
        use rustix::{fs::OFlags, io::Errno};
        // NONBLOCK: a FIFO put there must not hang the open.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.handle, name, flags, rustix::fs::Mode::empty()) {
            Ok(fd) => {
                let file = File::from(fd);
                Ok(file.metadata()?.is_file().then_some(file))
            }
            Err(Errno::NOENT | Errno::LOOP) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The file `name`, open for reading and writing, created (`0600`) if missing: a lock
    /// file. Anything else at `name` is replaced ([`Self::make_way`]).
    pub(super) fn open_lock(&self, name: &str) -> io::Result<File> {
        use rustix::fs::OFlags;
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match self.open_at(name, flags) {
            Err(error) => {
                if self.make_way(name)? {
                    self.open_at(name, flags)
                } else {
                    Err(error)
                }
            }
            opened => opened,
        }
    }

    /// A new file `name` (`0600`), for writing; fails if `name` exists.
    pub(super) fn create_new(&self, name: &str) -> io::Result<File> {
        use rustix::fs::OFlags;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        self.open_at(name, flags)
    }

    /// Renames `from` to `to`, replacing `to`, both in this directory. A rename replaces a
    /// link or a FIFO at `to` (the link itself, never its target); a directory there is
    /// removed first ([`Self::make_way`]).
    pub(super) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let rename = || rustix::fs::renameat(&self.handle, from, &self.handle, to);
        match rename() {
            Ok(()) => Ok(()),
            Err(error) if self.make_way(to)? => rename().map_err(|_| error.into()),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes what stands at `name`, one of the store's own names, if it is not a regular
    /// file, so that a file of ours can be made there: a symbolic link (removed, never
    /// followed), a FIFO, a socket, a device, an empty directory; warns saying what it
    /// found. True when something was removed (or vanished meanwhile); false when `name` is
    /// a regular file or missing. A directory with files in it is left alone: an error that
    /// names it and says what to do.
    fn make_way(&self, name: &str) -> io::Result<bool> {
        use rustix::{
            fs::{AtFlags, FileType},
            io::Errno,
        };
        let stat = match rustix::fs::statat(&self.handle, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(false),
            Err(error) => return Err(error.into()),
        };
        let kind = FileType::from_raw_mode(stat.st_mode);
        let what = match kind {
            FileType::RegularFile => return Ok(false),
            FileType::Symlink => "a symbolic link",
            FileType::Fifo => "a FIFO",
            FileType::Socket => "a socket",
            FileType::CharacterDevice | FileType::BlockDevice => "a device",
            FileType::Directory => "a directory",
            FileType::Unknown => "a file of an unknown type",
        };
        let path = self.path.join(name);
        let flags = if kind == FileType::Directory {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        match rustix::fs::unlinkat(&self.handle, name, flags) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(Errno::NOTEMPTY | Errno::EXIST) => {
                return Err(io::Error::other(format!(
                    "{} is a directory with files in it, where the token cache keeps a file \
                     of its own: move it elsewhere (or remove it), and the cache repairs \
                     itself",
                    path.display()
                )));
            }
            Err(error) => return Err(error.into()),
        }
        tracing::warn!(
            "vipps token cache: found {what} at {}, where the cache keeps a regular file of \
             its own; removed it (never followed) and made the file anew",
            path.display()
        );
        Ok(true)
    }

    /// Removes the file `name` (a link is removed, not followed).
    pub(super) fn remove(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            &self.handle,
            name,
            rustix::fs::AtFlags::empty(),
        )?)
    }

    /// True when `name` still names `file`: not removed or replaced since it was opened.
    pub(super) fn still_names(&self, name: &str, file: &File) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt as _;
        let Some(current) = self.open_file(name)? else {
            return Ok(false);
        };
        let (held, now) = (file.metadata()?, current.metadata()?);
        Ok(held.dev() == now.dev() && held.ino() == now.ino())
    }

    /// Opens `name` in this directory with `flags` (files created `0600`); only regular
    /// files.
    fn open_at(&self, name: &str, flags: rustix::fs::OFlags) -> io::Result<File> {
        let mode = rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR;
        let file = File::from(rustix::fs::openat(&self.handle, name, flags, mode)?);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file, and it could not be replaced by one",
            ));
        }
        Ok(file)
    }
}

#[cfg(not(unix))]
impl CacheDir {
    fn open(path: &Path) -> Result<Self, StoreError> {
        Err(StoreError::Unavailable(format!(
            "the file token store needs a Unix system; {} is not used",
            path.display()
        )))
    }

    pub(super) fn names(&self) -> io::Result<Vec<String>> {
        match self.never {}
    }

    pub(super) fn open_file(&self, _: &str) -> io::Result<Option<File>> {
        match self.never {}
    }

    pub(super) fn open_lock(&self, _: &str) -> io::Result<File> {
        match self.never {}
    }

    pub(super) fn create_new(&self, _: &str) -> io::Result<File> {
        match self.never {}
    }

    pub(super) fn rename(&self, _: &str, _: &str) -> io::Result<()> {
        match self.never {}
    }

    pub(super) fn remove(&self, _: &str) -> io::Result<()> {
        match self.never {}
    }

    pub(super) fn still_names(&self, _: &str, _: &File) -> io::Result<bool> {
        match self.never {}
    }
}

fn symlink_refused(path: &Path) -> StoreError {
    StoreError::Unavailable(format!(
        "the token cache directory {} is a symbolic link: whoever can change the link \
         chooses where tokens are written; use the real directory",
        path.display()
    ))
}

fn not_a_directory(path: &Path) -> StoreError {
    StoreError::Config(format!(
        "the token cache {} is not a directory: remove it, or choose another directory",
        path.display()
    ))
}

/// Creates `dir` and any missing parent, `0700` on Unix.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
