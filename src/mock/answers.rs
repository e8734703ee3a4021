//! The real API's answers to requests it refuses before looking at the keys, and the paths
//! it serves: what the token broker answers with, as the mock does.

pub(crate) use super::{
    azure::{malformed_body, missing_parameter, missing_secret},
    endpoint::Endpoint,
    gateway::{missing_subscription_key, not_found},
    partner::{
        basic_pair as partner_basic_pair, form_scope as partner_form_scope,
        header_refusal as partner_header_refusal, unauthenticated as partner_unauthenticated,
    },
};
