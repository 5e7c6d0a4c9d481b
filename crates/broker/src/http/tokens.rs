//! `ApplyToken`, `QueryToken`, `RevokeToken`: tokens issued to the signing AccessKey.

use mqgate_auth::{TokenActions, TokenRequest};
use serde_json::Value;

use super::{Answer, Api, ApiError};
use crate::clock::unix_time_ms;

/// `Resources` (comma-separated topic filters), `Actions` (`R`, `W`, `R,W`), `ExpireTime`
/// (ms since the epoch) -> `Token`.
pub(super) fn apply(api: &Api<'_>) -> Result<Answer, ApiError> {
    let resources = api
        .params
        .required("Resources")?
        .split(',')
        .map(|resource| resource.trim().to_owned())
        .collect();
    let actions = api.params.required("Actions")?;
    let actions = TokenActions::parse(actions)
        .ok_or_else(|| ApiError::invalid("Actions", "must be R, W or R,W"))?;
    api.params.required("ExpireTime")?;
    let expire_time_ms = api.params.number("ExpireTime", 0)?;
    let request = TokenRequest {
        resources,
        actions,
        expire_time_ms,
    };
    let record = api
        .core
        .issue_token(api.params.access_key_id(), request, unix_time_ms())?;
    let mut answer = Answer::new();
    answer.insert("Token".into(), Value::String(record.token));
    Ok(answer)
}

/// `Token` -> `TokenStatus`: true while it is neither expired nor revoked. A token this
/// AccessKey did not issue is reported invalid.
pub(super) fn query(api: &Api<'_>) -> Result<Answer, ApiError> {
    let token = api.params.required("Token")?;
    let valid = match api.core.query_token(api.params.access_key_id(), token) {
        Ok(record) => record.is_valid(unix_time_ms()),
        Err(mqgate_auth::ManageError::UnknownToken) => false,
        Err(other) => return Err(other.into()),
    };
    let mut answer = Answer::new();
    answer.insert("TokenStatus".into(), Value::Bool(valid));
    Ok(answer)
}

/// `Token`: new connections can no longer use it (live ones close too with
/// `auth.disconnect_on_token_invalid`).
pub(super) fn revoke(api: &Api<'_>) -> Result<Answer, ApiError> {
    let token = api.params.required("Token")?;
    api.core.revoke_token(api.params.access_key_id(), token)?;
    api.ctx.access.tokens.recheck();
    Ok(Answer::new())
}
