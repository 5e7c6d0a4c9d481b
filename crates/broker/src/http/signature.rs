//! From an HTTP request to verified [`Params`]: the body is read up to `max_body_bytes`, the
//! parts go to mqgate-auth's `verify_request` (either scheme), and the signer must be
//! allowed to use the API.

use std::sync::atomic::Ordering;

use axum::extract::Request;
use axum::http::StatusCode;
use mqgate_auth::openapi::{verify_request, HttpRequestParts};

use super::error::ApiError;
use super::params::Params;
use super::HttpCtx;
use crate::auth::CoreAuth;
use crate::clock::unix_time_ms;

pub(crate) async fn verified(
    ctx: &HttpCtx,
    core: &CoreAuth,
    request: Request,
) -> Result<Params, ApiError> {
    let (parts, body) = request.into_parts();
    let limit = ctx.settings.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "InvalidParameter.Body",
            format!("the body is larger than {limit} bytes or was cut short"),
        )
    })?;
    let mut headers = Vec::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let value = value.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidHeader",
                format!("header {name} is not visible ASCII"),
            )
        })?;
        headers.push((name.as_str().to_owned(), value.to_owned()));
    }
    let request = HttpRequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or_default(),
        headers,
        body: &body,
    };
    let settings = ctx.auth.as_ref();
    let lookup = |access_key_id: &str| core.access_key_secret(access_key_id);
    let verified =
        verify_request(&request, lookup, unix_time_ms(), &ctx.access.nonces).map_err(|error| {
            ctx.core
                .metrics
                .api_auth_failures
                .fetch_add(1, Ordering::Relaxed);
            ApiError::from(error)
        })?;
    if !settings.is_some_and(|s| s.api_allowed(&verified.access_key_id)) {
        ctx.core
            .metrics
            .api_auth_failures
            .fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden.AccessKey",
            format!("AccessKey {} may not use the API", verified.access_key_id),
        ));
    }
    let header = |name: &str| request.header(name).map(str::to_owned);
    let (action, version) = (header("x-acs-action"), header("x-acs-version"));
    Ok(Params::signed(verified, action, version))
}
