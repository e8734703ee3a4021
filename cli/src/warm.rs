//! A warm run: the token read at once from the file cache, with no runtime, no HTTP
//! client and no provider, the common case of a script that asks for a token many times
//! an hour. Anything but a fresh record in the file cache (a miss, `--env mock`, Redis,
//! `--no-cache`, a setting in error) is a miss, and the command runs as usual: the
//! provider it builds reads the same record, fetches on a miss and reports what is wrong.

use vipps_access_token::{
    AccessToken, ClientSecret, RefreshPolicy, StandardCredentials, TokenSource,
};

use crate::{
    args::{
        CallerArgs, Env, KeyArgs, LegacyArgs, Output, PartnerArgs, StandardArgs, StoreArgs,
        SubscriptionKeyArgs, Target,
    },
    keys, output, session, store,
};

/// `token`, from the cache: true when printed.
pub fn standard(args: &StandardArgs) -> bool {
    printed(standard_token(args), args.output.output)
}

/// `partner-token`, from the cache: true when printed.
pub fn partner(args: &PartnerArgs) -> bool {
    printed(partner_token(args), args.output.output)
}

/// `legacy-token`, from the cache: true when printed.
pub fn legacy(args: &LegacyArgs) -> bool {
    printed(legacy_token(args), args.output.output)
}

fn printed(token: Option<AccessToken>, form: Output) -> bool {
    token.inspect(|token| output::print(token, form)).is_some()
}

fn standard_token(args: &StandardArgs) -> Option<AccessToken> {
    let (source, secret) = standard_keys(&args.keys, &args.subscription_key, |credentials| {
        TokenSource::Standard(credentials)
    })?;
    let (target, caller) = (&args.target, &args.caller);
    cached(target, caller, &args.store, None, source, &secret)
}

/// Production unless told otherwise, as the command.
fn partner_token(args: &PartnerArgs) -> Option<AccessToken> {
    let mut target = args.target.clone();
    let env = target.env_or(Env::Production);
    if env == Env::Test && target.base_url.is_none() {
        return None; // refused by the command, which says why
    }
    target.env = Some(env);
    let credentials = keys::partner(&args.keys.as_keys(), None).ok()?;
    let secret = credentials.client_secret.clone();
    let source = TokenSource::Partner {
        credentials,
        scope: args.scope.clone(),
    };
    let path = Some(args.token_path.as_str());
    cached(&target, &args.caller, &args.store, path, source, &secret)
}

#[allow(deprecated)]
fn legacy_token(args: &LegacyArgs) -> Option<AccessToken> {
    let resource = args.resource.clone();
    let (source, secret) = standard_keys(&args.keys, &args.subscription_key, |credentials| {
        TokenSource::Legacy {
            credentials,
            resource,
        }
    })?;
    let (target, caller) = (&args.target, &args.caller);
    cached(target, caller, &args.store, None, source, &secret)
}

/// The standard keys as the command reads them, in the source `flow` makes of them, and
/// their client secret, from which the file cache's sealing key derives.
fn standard_keys(
    keys: &KeyArgs,
    subscription_key: &SubscriptionKeyArgs,
    flow: impl FnOnce(StandardCredentials) -> TokenSource,
) -> Option<(TokenSource, ClientSecret)> {
    let credentials = keys::standard(keys, subscription_key, None).ok()?;
    let secret = credentials.client_secret.clone();
    Some((flow(credentials), secret))
}

/// The token the command's file cache holds for `source`, with the life left that the
/// command's provider asks of a stored token. The client is built first: input the
/// command refuses must not leave a cache directory behind.
fn cached(
    target: &Target,
    caller: &CallerArgs,
    store_args: &StoreArgs,
    partner_token_path: Option<&str>,
    source: TokenSource,
    secret: &ClientSecret,
) -> Option<AccessToken> {
    let base_url = session::base_url(target)?;
    let client = session::client(base_url, target, caller, partner_token_path).ok()?;
    let store = store::file_cache_quietly(store_args, target.env_or(Env::Test), secret)?;
    let margin = RefreshPolicy::default().expiry_margin;
    store.fresh_token(&client, &source, margin)
}
