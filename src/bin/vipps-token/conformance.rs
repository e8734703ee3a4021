//! `conformance`: the documented checks against a deployment, printed as a table.

use vipps_access_token::{
    PartnerCredentials,
    conformance::{self, ConformanceConfig, ENV_HELP},
};

use crate::{
    args::{CallerArgs, ConformanceArgs},
    failure::{DEVIATIONS, Failure},
    fetch::Session,
    keys,
};

/// Runs `conformance`: exit 0 when every check passes, 6 when any deviates.
pub async fn run(args: ConformanceArgs) -> Result<(), Failure> {
    let no_caller_headers = CallerArgs {
        msn: None,
        system_name: None,
        system_version: None,
        system_plugin_name: None,
        system_plugin_version: None,
    };
    let session = Session::open(&args.target, &no_caller_headers, Some(&args.token_path)).await?;
    let mock = session.mock.as_ref();

    let standard = match args.keys.client_id.is_some() || mock.is_some() {
        true => Some(keys::standard(&args.keys, &args.subscription_key, mock)?),
        false => None,
    };
    let partner = match (&args.partner_client_id, &args.partner_client_secret, mock) {
        (Some(id), Some(secret), _) => Some(PartnerCredentials::new(id, secret)),
        (None, None, Some(mock)) => Some(mock.partner_credentials()),
        (None, None, None) => None,
        _ => {
            return Err(Failure::usage(
                "give both --partner-client-id and --partner-client-secret, or neither",
            ));
        }
    };
    if standard.is_none() && partner.is_none() {
        return Err(Failure::usage(format!("no keys to check with: {ENV_HELP}")));
    }

    let config = ConformanceConfig {
        base_url: session.client.base_url().to_owned(),
        standard,
        partner,
        partner_token_path: args.token_path,
    };
    let report = conformance::run(&config).await;
    println!("{report}");
    match report.failures().count() {
        0 => Ok(()),
        n => Err(Failure::new(
            DEVIATIONS,
            format!("{n} checks deviate from the documentation (see the table above)"),
        )),
    }
}
