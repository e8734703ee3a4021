//! JWT decoding: any string decodes or gives an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipps_access_token::UnverifiedJwt;

fuzz_target!(|token: &str| {
    if let Ok(jwt) = UnverifiedJwt::decode(token) {
        let _ = (jwt.expires_at(), jwt.not_before(), jwt.issued_at(), jwt.to_string());
    }
});
