//! A cache file of the file store: a small header in the clear (magic, version, expiry,
//! flow), then the sealed record, as the Redis store keeps it.

use std::{
    io::{self, Read as _},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::StoreError;
use crate::flow::Flow;

/// Marks a cache file of this library, and its format version.
const FILE_MAGIC: &[u8; 4] = b"vatf";
const FILE_VERSION: u8 = 1;
/// Magic, version, expiry (Unix milliseconds, big endian), flow.
pub(super) const FILE_HEADER_BYTES: usize = FILE_MAGIC.len() + 1 + 8 + 1;

/// What a cache file says about its record, in the clear.
pub(super) struct Header {
    pub(super) expires_at: SystemTime,
    pub(super) flow: Option<Flow>,
}

impl Header {
    /// The header's bytes.
    pub(super) fn encode(&self) -> Vec<u8> {
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

/// The moment `ttl` from now; a TTL beyond what the clock can say ends in 2106.
pub(super) fn expiry_after(ttl: Duration) -> SystemTime {
    let now = SystemTime::now();
    now.checked_add(ttl)
        .or_else(|| UNIX_EPOCH.checked_add(Duration::from_secs(u32::MAX.into())))
        .unwrap_or(now)
}

/// The header and the sealed record of a cache file.
pub(super) fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), StoreError> {
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

/// What the first bytes of a cache file say.
pub(super) enum Peek {
    /// Not a file of this library: never ours to remove.
    Foreign,
    /// This library's magic, with the header when this build reads it (`None`: another
    /// version, or truncated).
    Ours(Option<Header>),
}

/// The header of `file`, read alone: housekeeping never reads a whole record.
pub(super) fn peek(file: &std::fs::File) -> io::Result<Peek> {
    let mut bytes = Vec::with_capacity(FILE_HEADER_BYTES);
    file.take(FILE_HEADER_BYTES as u64)
        .read_to_end(&mut bytes)?;
    if !bytes.starts_with(FILE_MAGIC) {
        return Ok(Peek::Foreign);
    }
    Ok(Peek::Ours(parse(&bytes).ok().map(|(header, _)| header)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
