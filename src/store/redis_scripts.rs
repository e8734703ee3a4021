//! The Lua scripts that make each step of a token one round trip, atomic on Redis. Every
//! key a script touches shares the token's `{hash tag}`, so each runs on one Cluster slot.
//! Sent as `EVALSHA`, and loaded ([`ALL`]) while connecting, so that an operation is one
//! round trip from the first: `redis::Script` alone would spend three on a script's first
//! run (`EVALSHA`, `NOSCRIPT`, `SCRIPT LOAD`, `EVALSHA`), more than the operation timeout
//! allows a Redis 60 ms away. It still loads a script again when a server answers
//! `NOSCRIPT` (restarted, or failed over, under a live connection). Each script reads
//! every key before it writes one, or writes only what it can write again: a `WRONGTYPE`
//! answer leaves nothing half done, so the store can run [`REPAIR`] and try the script
//! once more.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: lease, failure marker, records... ARGV: holder, lease ms, min life ms.
/// Reads every record and the failure marker; unless a record has more than `min life`
/// left or the marker is set, takes the lease (`SET NX PX`). Returns `[leased "1"/"0",
/// lease holder or nil, failure marker or nil, records...]`.
pub(super) static READ_OR_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
local fresh = false
for i = 3, #KEYS do
  local record = redis.call('GET', KEYS[i])
  out[#out + 1] = record
  if record and redis.call('PTTL', KEYS[i]) > tonumber(ARGV[3]) then fresh = true end
end
local failed = redis.call('GET', KEYS[2])
local holder = redis.call('GET', KEYS[1])
local leased = '0'
if not fresh and not failed and not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  leased = '1'
  holder = false
end
local reply = {leased, holder, failed}
for i = 1, #out do reply[#reply + 1] = out[i] end
return reply
",
    )
});

/// KEYS: the key. ARGV: value, ms. Extends the key's life only if it holds the value.
pub(super) static EXTEND_IF_EQUAL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// KEYS: the key. ARGV: value. Deletes the key only if it holds the value.
pub(super) static DELETE_IF_EQUAL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// KEYS: record, lease, failure marker. ARGV: sealed record, ms, holder. Saves the
/// record, clears the marker, and releases the lease if the holder still holds it.
pub(super) static SAVE_AND_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[3])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
",
    )
});

/// KEYS: lease, failure marker. ARGV: holder, marker ms, marker. Sets the failure
/// marker and releases the lease if the holder still holds it.
pub(super) static FAIL_AND_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
",
    )
});

/// KEYS: the keys an operation answered `WRONGTYPE` on. Deletes those that hold another
/// type than a string (a list, a hash: not ours, or a mistake), so that the store can be
/// used again; returns how many it deleted.
pub(super) static REPAIR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local deleted = 0
for i = 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= 'string' and kind ~= 'none' then
    deleted = deleted + redis.call('DEL', KEYS[i])
  end
end
return deleted
",
    )
});

/// Every script, loaded on each new connection.
pub(super) static ALL: [&LazyLock<Script>; 6] = [
    &READ_OR_LEASE,
    &EXTEND_IF_EQUAL,
    &DELETE_IF_EQUAL,
    &SAVE_AND_RELEASE,
    &FAIL_AND_RELEASE,
    &REPAIR,
];
