//! The wire format and what is read off it: the binding generated from the spec
//! (`generated`, never edited), the token paths (`paths`), the identifying request headers
//! (`headers`), the body read within its limit (`body`), the tolerant responses
//! (`response`), the [`AccessToken`](token::AccessToken) made of them (`token`), and
//! unverified JWTs (`jwt`). Nothing here sends a request or keeps a token: `client` and
//! `provider` do.
//!
//! May import: credentials, error, flow, integer_or_digits, time.

pub(crate) mod answer;
pub(crate) mod body;
pub(crate) mod generated;
pub(crate) mod headers;
pub(crate) mod jwt;
pub(crate) mod paths;
pub(crate) mod response;
pub(crate) mod token;
