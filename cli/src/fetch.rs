//! The token commands: ask for a token, through the token store unless `--no-cache`, and
//! print it.

use std::sync::Arc;

use vipps_access_token::{TokenProvider, TokenSource, store::TokenStore};

use crate::{
    args::{Env, LegacyArgs, Output, PartnerArgs, StandardArgs},
    failure::Failure,
    keys, output, progress,
    session::Session,
    store,
};

/// `token`.
pub async fn standard(args: StandardArgs) -> Result<(), Failure> {
    let session = Session::open(&args.target, &args.caller, None).await?;
    let credentials = keys::standard(&args.keys, &args.subscription_key, session.mock.as_ref())?;
    if let Some(store) = store::for_token(
        &args.store,
        args.target.env_or(Env::Test),
        &credentials.client_secret,
    )? {
        let source = TokenSource::Standard(credentials);
        return fetch_through(&session, store, source, args.output.output).await;
    }
    let request = session.client.standard_token(&credentials);
    session.finish(request, args.output.output).await
}

/// `partner-token`: production by default, the only environment the partner flow exists in.
pub async fn partner(args: PartnerArgs) -> Result<(), Failure> {
    let mut target = args.target.clone();
    let env = target.env_or(Env::Production);
    if env == Env::Test && target.base_url.is_none() {
        return Err(Failure::usage(
            "the partner flow (management and accounting keys) does not exist in the test \
             environment: use --env production (the default), --env mock, or --base-url",
        ));
    }
    target.env = Some(env);
    let session = Session::open(&target, &args.caller, Some(&args.token_path)).await?;
    let credentials = keys::partner(&args.keys.as_keys(), session.mock.as_ref())?;
    if let Some(store) = store::for_token(&args.store, env, &credentials.client_secret)? {
        let scope = args.scope.clone();
        let source = TokenSource::Partner { credentials, scope };
        return fetch_through(&session, store, source, args.output.output).await;
    }
    let request = session
        .client
        .partner_token(&credentials, args.scope.as_deref());
    session.finish(request, args.output.output).await
}

/// `legacy-token`.
#[allow(deprecated)]
pub async fn legacy(args: LegacyArgs) -> Result<(), Failure> {
    let session = Session::open(&args.target, &args.caller, None).await?;
    let credentials = keys::standard(&args.keys, &args.subscription_key, session.mock.as_ref())?;
    if let Some(store) = store::for_token(
        &args.store,
        args.target.env_or(Env::Test),
        &credentials.client_secret,
    )? {
        let resource = args.resource.clone();
        let source = TokenSource::Legacy {
            credentials,
            resource,
        };
        return fetch_through(&session, store, source, args.output.output).await;
    }
    let request = session.client.legacy_token(&credentials, &args.resource);
    session.finish(request, args.output.output).await
}

/// A token through `store`: the stored one when another run saved it, otherwise one
/// fetch for every run asking meanwhile, saved for the next.
pub async fn fetch_through(
    session: &Session,
    store: Arc<dyn TokenStore>,
    source: TokenSource,
    output: Output,
) -> Result<(), Failure> {
    let provider = TokenProvider::builder(session.client.clone(), source)
        .store(store)
        .build();
    let request = async { provider.token().await.map(|token| (*token).clone()) };
    let request = session.within_deadline(request);
    let token = progress::while_waiting(session.client.base_url(), request).await?;
    output::print(&token, output);
    // The record is saved after the token is handed out; the next run needs it.
    vipps_access_token::store::settle(SAVE_WAIT).await;
    Ok(())
}

/// How long a run waits, after printing its token, for the record to reach the store.
const SAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
