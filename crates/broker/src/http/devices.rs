//! Device credentials ("one device, one secret"): register, get, refresh, unregister, list.

use mqgate_auth::DeviceCredential;
use serde_json::{json, Value};

use super::{Answer, Api, ApiError};
use crate::clock::unix_time_ms;

/// Most client ids on one page of `ListDeviceCredentialClientId`.
const MAX_PAGE: u64 = 100;

fn answer(credential: DeviceCredential) -> Answer {
    let mut answer = Answer::new();
    answer.insert(
        "DeviceCredential".into(),
        json!({
            "ClientId": credential.client_id,
            "InstanceId": credential.instance_id,
            "DeviceAccessKeyId": credential.device_access_key_id,
            "DeviceAccessKeySecret": credential.device_access_key_secret,
            "CreateTime": credential.create_time_ms,
            "UpdateTime": credential.update_time_ms,
        }),
    );
    answer
}

pub(super) fn register(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?;
    let credential = api
        .core
        .register_device_credential(client_id, unix_time_ms())?;
    Ok(answer(credential))
}

pub(super) fn get(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?;
    Ok(answer(api.core.device_credential(client_id)?))
}

/// A new secret; the old one stops working at once.
pub(super) fn refresh(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?;
    let credential = api
        .core
        .refresh_device_credential(client_id, unix_time_ms())?;
    Ok(answer(credential))
}

pub(super) fn unregister(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?;
    api.core.unregister_device_credential(client_id)?;
    Ok(Answer::new())
}

/// `GroupId`, `PageNo` (from 1), `PageSize` (1 to 100), `NextToken` (the next page's
/// number, as returned) -> the group's client ids that have a credential, sorted.
pub(super) fn list(api: &Api<'_>) -> Result<Answer, ApiError> {
    let group = api.params.required("GroupId")?;
    let size = api.params.number("PageSize", MAX_PAGE)?;
    if !(1..=MAX_PAGE).contains(&size) {
        return Err(ApiError::invalid("PageSize", "must be 1 to 100"));
    }
    let page = match api.params.optional("NextToken") {
        Some(_) => api.params.number("NextToken", 1)?,
        None => api.params.number("PageNo", 1)?,
    };
    if page == 0 {
        return Err(ApiError::invalid("PageNo", "pages count from 1"));
    }
    let prefix = format!("{group}@@@");
    let ids: Vec<String> = api
        .core
        .device_credential_client_ids()?
        .into_iter()
        .filter(|id| id.starts_with(&prefix))
        .collect();
    let total = ids.len() as u64;
    let skip = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
    let take = usize::try_from(size).unwrap_or(usize::MAX);
    let shown: Vec<Value> = ids
        .into_iter()
        .skip(skip)
        .take(take)
        .map(Value::String)
        .collect();
    let mut list = json!({
        "ClientIdList": shown,
        "PageNo": page.to_string(),
        "PageSize": size.to_string(),
        "Total": total.to_string(),
    });
    if let (true, Some(fields)) = (page.saturating_mul(size) < total, list.as_object_mut()) {
        fields.insert("NextToken".into(), Value::String((page + 1).to_string()));
    }
    let mut answer = Answer::new();
    answer.insert("DeviceCredentialClientIdList".into(), list);
    Ok(answer)
}
