//! What to do about an answer from the API, in one sentence: the status, the flow and
//! the error body together tell a wrong key from a wrong environment or a server fault.

use super::body::ErrorBody;
use crate::flow::Flow;

/// The advice for a `status` answer to a `flow` request with `body`.
pub(crate) fn hint(flow: Flow, status: u16, body: &ErrorBody) -> &'static str {
    match status {
        400 if body.mentions_any(&["AADSTS700016", "AADSTS70001"]) => {
            "the client_id was not found: check it, and that test keys go to the test \
             environment (apitest.vipps.no) and production keys to production (api.vipps.no)"
        }
        400 if body.error_code() == Some("unsupported_grant_type") => {
            "the partner endpoint needs the form body grant_type=client_credentials"
        }
        400 if flow == Flow::Partner => {
            "check the Basic credentials (management or accounting keys) and that the form \
             body carries grant_type=client_credentials: without it the endpoint answers \
             invalid_client"
        }
        400 => {
            "the request was refused: check client_id, client_secret and that the keys \
             belong to the environment you call"
        }
        401 if flow == Flow::Partner => {
            "the partner keys were rejected: check client_id and client_secret (management \
             or accounting keys), and call production: the partner flow has no test environment"
        }
        401 if body.mentions_any(&["subscription key"]) => {
            "the subscription key is missing or wrong: use the Ocp-Apim-Subscription-Key \
             of the same sales unit and environment as the client_id"
        }
        401 => {
            "the credentials were rejected: check client_secret (and the subscription key), \
             and that test keys are not used against production or the other way round"
        }
        300..=399 => {
            "the token endpoint redirected the request, and redirects are not followed so \
             that the credentials never reach another host: set the base URL to where the \
             API answers (https://api.vipps.no or https://apitest.vipps.no), not to a \
             redirecting proxy or an old address"
        }
        403 => {
            "the keys are valid but lack access: the product may not be active for this \
             sales unit, or these keys need the other token endpoint (management and \
             accounting keys use the partner flow)"
        }
        404 => {
            "nothing answers at this path: check the base URL (https://api.vipps.no or \
             https://apitest.vipps.no) and the token path"
        }
        408 | 429 => "the API asks you to slow down: retry later, with backoff",
        500..=599 => {
            "a server error on Vipps MobilePay's side: retry later, with backoff; if it \
             persists, report the status and any trace id to Vipps MobilePay"
        }
        _ => "an undocumented answer: check the base URL and any proxy in between",
    }
}
