//! Custom authentication: `{Add,Update,Delete,Query}CustomAuthIdentity`,
//! `{Add,Update,Delete,Query}CustomAuthPermission` and
//! `{Add,Delete,Query}CustomAuthConnectBlack`. The rules are mqgate-auth's (module `custom`);
//! a client id put on the blacklist is also closed at once if it is online.

use axum::http::StatusCode;
use mqgate_auth::custom::{CustomAuthError, IdentitySpec, Page, PageRequest, PermissionSpec};
use serde_json::{json, Value};

use super::{Answer, Api, ApiError};
use crate::clock::unix_time_ms;
use crate::core::inbox::Kick;

impl From<CustomAuthError> for ApiError {
    fn from(error: CustomAuthError) -> Self {
        match error {
            CustomAuthError::Missing(name) => ApiError::missing(name),
            CustomAuthError::Invalid { parameter, reason } => ApiError::invalid(parameter, reason),
            CustomAuthError::NotFound(what) => {
                ApiError::not_found(what.api_name(), format!("no such {}", what.api_name()))
            }
            CustomAuthError::AlreadyExists(what) => ApiError::new(
                StatusCode::CONFLICT,
                format!("{}.AlreadyExists", what.api_name()),
                error.to_string(),
            ),
            CustomAuthError::OverCapacity { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "Customauth.over.capacity",
                error.to_string(),
            ),
            CustomAuthError::Registry(error) => error.into(),
        }
    }
}

/// `Code` 200, `Success` true and `Message`, as every answer of these actions carries.
fn done() -> Answer {
    let mut answer = Answer::new();
    answer.insert("Code".into(), Value::from(200));
    answer.insert("Success".into(), Value::Bool(true));
    answer.insert("Message".into(), Value::from("operation success"));
    answer
}

/// [`done`] with `Data`: `{Results, NextToken}` (`NextToken` only when a next page exists).
fn page<T>(page: Page<T>, show: impl Fn(T) -> Value) -> Answer {
    let mut data = json!({ "Results": page.results.into_iter().map(show).collect::<Vec<_>>() });
    if let (Some(token), Some(fields)) = (page.next_token, data.as_object_mut()) {
        fields.insert("NextToken".into(), Value::String(token));
    }
    let mut answer = done();
    answer.insert("Data".into(), data);
    answer
}

/// `Size` (required, 1 to 100) and `NextToken` (opaque, as a previous page returned it).
fn page_request(api: &Api<'_>) -> Result<PageRequest, ApiError> {
    api.params.required("Size")?;
    let size = api.params.number("Size", 0)?;
    Ok(PageRequest::new(size, api.params.optional("NextToken"))?)
}

fn identity_spec<'a>(api: &'a Api<'_>) -> Result<IdentitySpec<'a>, ApiError> {
    Ok(IdentitySpec {
        identity_type: api.params.required("IdentityType")?,
        username: api.params.required("Username")?,
        client_id: api.params.optional("ClientId"),
        secret: api.params.required("Secret")?,
        sign_mode: api.params.optional("SignMode"),
    })
}

fn permission_spec<'a>(api: &'a Api<'_>) -> Result<PermissionSpec<'a>, ApiError> {
    Ok(PermissionSpec {
        identity_type: api.params.required("IdentityType")?,
        identity: api.params.required("Identity")?,
        topic: api.params.required("Topic")?,
        permit_action: api.params.required("PermitAction")?,
        effect: api.params.required("Effect")?,
    })
}

pub(super) fn add_identity(api: &Api<'_>) -> Result<Answer, ApiError> {
    api.core
        .add_custom_identity(&identity_spec(api)?, unix_time_ms())?;
    Ok(done())
}

pub(super) fn update_identity(api: &Api<'_>) -> Result<Answer, ApiError> {
    api.core
        .update_custom_identity(&identity_spec(api)?, unix_time_ms())?;
    Ok(done())
}

pub(super) fn delete_identity(api: &Api<'_>) -> Result<Answer, ApiError> {
    api.core.delete_custom_identity(
        api.params.required("IdentityType")?,
        api.params.required("Username")?,
        api.params.optional("ClientId"),
    )?;
    Ok(done())
}

pub(super) fn query_identities(api: &Api<'_>) -> Result<Answer, ApiError> {
    let request = page_request(api)?;
    let found = api.core.query_custom_identities(
        api.params.optional("IdentityType"),
        api.params.optional("Username"),
        api.params.optional("ClientId"),
        &request,
    )?;
    Ok(page(found, |identity| {
        let mut shown = json!({
            "IdentityType": identity.identity_type.as_str(),
            "Username": identity.username,
            "Secret": identity.secret,
            "SignMode": identity.sign_mode.as_str(),
        });
        if let (Some(client_id), Some(fields)) = (identity.client_id, shown.as_object_mut()) {
            fields.insert("ClientId".into(), Value::String(client_id));
        }
        shown
    }))
}

pub(super) fn add_permission(api: &Api<'_>) -> Result<Answer, ApiError> {
    api.core
        .add_custom_permission(&permission_spec(api)?, unix_time_ms())?;
    Ok(done())
}

pub(super) fn update_permission(api: &Api<'_>) -> Result<Answer, ApiError> {
    api.core
        .update_custom_permission(&permission_spec(api)?, unix_time_ms())?;
    Ok(done())
}

pub(super) fn delete_permission(api: &Api<'_>) -> Result<Answer, ApiError> {
    api.core.delete_custom_permission(
        api.params.required("IdentityType")?,
        api.params.required("Identity")?,
        api.params.required("Topic")?,
    )?;
    Ok(done())
}

pub(super) fn query_permissions(api: &Api<'_>) -> Result<Answer, ApiError> {
    let request = page_request(api)?;
    let found = api.core.query_custom_permissions(
        api.params.optional("IdentityType"),
        api.params.optional("Identity"),
        api.params.optional("Topic"),
        &request,
    )?;
    Ok(page(found, |permission| {
        json!({
            "IdentityType": permission.identity_type.as_str(),
            "Identity": permission.identity,
            "Topic": permission.topic,
            "PermitAction": permission.permit_action.as_str(),
            "Effect": permission.effect.as_str(),
        })
    }))
}

/// Puts the client id on the blacklist, then closes its connection if it has one. (A
/// CONNECT that passed its check just before is closed by the handshake, which checks the
/// blacklist again once the client is registered online.)
pub(super) fn add_black(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?;
    api.core.add_connect_black(client_id, unix_time_ms())?;
    let closed = api
        .ctx
        .core
        .registry
        .kick(client_id, None, Kick::Blacklisted);
    tracing::info!(
        client = client_id,
        closed,
        by = api.params.access_key_id(),
        "client id put on the connect blacklist"
    );
    Ok(done())
}

pub(super) fn delete_black(api: &Api<'_>) -> Result<Answer, ApiError> {
    api.core
        .delete_connect_black(api.params.required("ClientId")?)?;
    Ok(done())
}

/// Each entry is `{ClientId, Effect: "DENY", PermitAction: "CONNECT"}`: what the blacklist
/// does to the client.
pub(super) fn query_black(api: &Api<'_>) -> Result<Answer, ApiError> {
    let request = page_request(api)?;
    let found = api
        .core
        .query_connect_blacklist(api.params.optional("ClientId"), &request)?;
    Ok(page(
        found,
        |black| json!({ "ClientId": black.client_id, "Effect": "DENY", "PermitAction": "CONNECT" }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqgate_auth::custom::CustomResource;

    #[test]
    fn errors_map_to_the_apis_codes() {
        let cases = [
            (
                CustomAuthError::Missing("ClientId"),
                400,
                "MissingParameter.ClientId",
            ),
            (
                CustomAuthError::Invalid {
                    parameter: "Topic",
                    reason: "x".into(),
                },
                400,
                "InvalidParameter.Topic",
            ),
            (
                CustomAuthError::NotFound(CustomResource::Permission),
                404,
                "CustomAuthPermission.NotFound",
            ),
            (
                CustomAuthError::AlreadyExists(CustomResource::Identity),
                409,
                "CustomAuthIdentity.AlreadyExists",
            ),
            (
                CustomAuthError::OverCapacity {
                    what: CustomResource::ConnectBlack,
                    max: 1,
                },
                400,
                "Customauth.over.capacity",
            ),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(error);
            assert_eq!((api.status.as_u16(), api.code.as_ref()), (status, code));
        }
    }
}
