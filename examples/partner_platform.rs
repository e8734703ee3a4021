//! A platform acting for many merchants with one set of partner keys: one `TokenProvider`,
//! one token per merchant (`Merchant-Serial-Number`), a bounded cache.
//!
//! ```sh
//! cargo run --example partner_platform --features mock
//! ```
//!
//! Partner keys use the standard flow (`POST /accesstoken/get`) with the merchant's MSN in
//! `Merchant-Serial-Number`; tokens are never shared across merchants. The cache keeps at
//! most `max_slots` merchants that no live handle points at, dropping idle ones first.

use vipps_access_token::{TokenProvider, TokenSource, mock::MockServer};

/// How many merchants this example acts for.
const MERCHANTS: u32 = 300;
/// The cache bound for this example (the default, `DEFAULT_MAX_SLOTS`, is 1024).
const MAX_SLOTS: usize = 64;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token_api = MockServer::start().await?; // yours: Client::new(Environment::Production)
    let partner = TokenProvider::builder(
        token_api.client_builder().build()?,
        TokenSource::Standard(token_api.standard_credentials()), // your partner keys
    )
    .max_slots(MAX_SLOTS)
    .build();

    // Each merchant's calls go through a provider handle for its MSN.
    for n in 0..MERCHANTS {
        let msn = format!("{}", 100_000 + n);
        let merchant = partner.with_merchant_serial_number(&msn)?;
        let token = merchant.token().await?;
        // The token goes with the merchant's headers to the merchant's API calls.
        assert_eq!(
            token.headers()["merchant-serial-number"],
            msn.as_str(),
            "a token carries its own merchant's MSN"
        );
    }
    println!(
        "{MERCHANTS} merchants: {} token requests, {} merchants cached (bound {MAX_SLOTS})",
        token_api.request_count(),
        partner.cached_keys()
    );

    // A merchant asked again while cached costs nothing.
    let again = partner.with_merchant_serial_number("100299")?;
    let before = token_api.request_count();
    again.token().await?;
    println!(
        "merchant 100299 again: {} new token request(s)",
        token_api.request_count() - before
    );
    Ok(())
}
