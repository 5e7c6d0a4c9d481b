//! `QuerySessionByClientId`, `BatchQuerySessionByClientIds` (both from the live registry)
//! and `CloseConnection`.

use serde_json::{json, Value};

use super::{Answer, Api, ApiError};
use crate::core::inbox::Kick;

pub(super) fn query(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?;
    let mut answer = Answer::new();
    answer.insert(
        "OnlineStatus".into(),
        Value::Bool(api.ctx.core.registry.is_online(client_id)),
    );
    Ok(answer)
}

pub(super) fn batch_query(api: &Api<'_>) -> Result<Answer, ApiError> {
    let list: Vec<Value> = api
        .params
        .list("ClientIdList")?
        .into_iter()
        .map(|id| json!({ "ClientId": id, "OnlineStatus": api.ctx.core.registry.is_online(id) }))
        .collect();
    let mut answer = Answer::new();
    answer.insert("OnlineStatusList".into(), Value::Array(list));
    Ok(answer)
}

/// Closes the client's connection; `Success` says whether one was online to close.
pub(super) fn close(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?;
    let closed = api.ctx.core.registry.kick(client_id, None, Kick::Closed);
    tracing::info!(
        client = client_id,
        closed,
        by = api.params.access_key_id(),
        "CloseConnection"
    );
    let mut answer = Answer::new();
    answer.insert("Success".into(), Value::Bool(closed));
    answer.insert("Code".into(), Value::from(if closed { 200 } else { 404 }));
    answer.insert(
        "Message".into(),
        Value::from(if closed {
            "connection closed"
        } else {
            "client is not online"
        }),
    );
    Ok(answer)
}
