//! Sending a token request and turning the answer into a body or an [`Error`]:
//! the one path every flow's response takes, generated or hand-written.

use serde::de::DeserializeOwned;

use crate::{
    error::{ApiError, Error, answer::UpstreamAnswer, redact::redact},
    flow::Flow,
    wire::{
        body::{LimitedResponse, MAX_RESPONSE_BYTES, is_limit_error, read_limited},
        response::parse_token_body,
    },
};

/// A token body read from a 200 answer, with the answer as it was sent.
pub(crate) struct Answered<T> {
    pub(crate) body: T,
    pub(crate) answer: UpstreamAnswer,
}

/// Sends a hand-built request and reads a token body of type `T` from a 200 answer.
/// `secrets` are the credentials sent, hidden from anything an error keeps of the body.
pub(crate) async fn send<T: DeserializeOwned>(
    flow: Flow,
    request: reqwest::RequestBuilder,
    secrets: &[&str],
) -> Result<Answered<T>, Error> {
    let response = request.send().await.map_err(Error::transport)?;
    read(flow, response, secrets).await
}

/// Reads a token body from a 200 answer, or the error any other answer stands for.
pub(crate) async fn read<T: DeserializeOwned>(
    flow: Flow,
    response: reqwest::Response,
    secrets: &[&str],
) -> Result<Answered<T>, Error> {
    let LimitedResponse {
        status,
        retry_after,
        content_type,
        body,
    } = read_limited(response).await?;
    let answer = UpstreamAnswer::new(status, content_type.as_deref(), &body);
    if status != 200 {
        return Err(api_error(flow, retry_after, answer, secrets));
    }
    let parsed =
        parse_token_body(&body).map_err(|failure| failure.into_error(status, &body, secrets))?;
    Ok(Answered {
        body: parsed,
        answer,
    })
}

/// Maps the generated binding's error onto ours. Non-200 answers arrive as
/// `UnexpectedResponse` (build.rs removes the error statuses from the spec it generates from).
pub(crate) async fn from_generated<T: DeserializeOwned>(
    flow: Flow,
    error: progenitor_client::Error<()>,
    secrets: &[&str],
) -> Result<T, Error> {
    use progenitor_client::Error as Generated;
    match error {
        Generated::UnexpectedResponse(response) => read(flow, response, secrets)
            .await
            .map(|answered| answered.body),
        Generated::InvalidResponsePayload(body, _) => {
            // Parse again through our parser so the error names the field.
            parse_token_body::<T>(&body).map_err(|failure| failure.into_error(200, &body, secrets))
        }
        Generated::ResponseBodyError(e) if is_limit_error(&e) => Err(Error::ResponseTooLarge {
            status: e.status().map_or(200, |s| s.as_u16()),
            limit: MAX_RESPONSE_BYTES,
        }),
        Generated::CommunicationError(e)
        | Generated::ResponseBodyError(e)
        | Generated::InvalidUpgrade(e) => Err(Error::transport(e)),
        Generated::ErrorResponse(value) => {
            let answer = UpstreamAnswer::new(value.status().as_u16(), None, &[]);
            Err(api_error(flow, None, answer, secrets))
        }
        Generated::InvalidRequest(reason) | Generated::Custom(reason) => {
            Err(Error::invalid_input("request", redact(&reason, secrets)))
        }
    }
}

/// A non-200 answer as [`Error::Api`], its body parsed and the secrets sent hidden in it;
/// the answer as sent rides along, never shown, for the token broker to pass on.
fn api_error(
    flow: Flow,
    retry_after: Option<std::time::Duration>,
    answer: UpstreamAnswer,
    secrets: &[&str],
) -> Error {
    let error = ApiError::new(flow, answer.status(), retry_after, answer.body(), secrets);
    Error::Api(Box::new(error.with_answer(answer)))
}
