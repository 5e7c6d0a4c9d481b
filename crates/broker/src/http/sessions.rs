//! `QuerySessionByClientId`, `BatchQuerySessionByClientIds` (both from the live registry
//! and, in a cluster, the view of the clients on the other nodes) and `CloseConnection`
//! (in a cluster, wherever the client is connected).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{Answer, Api, ApiError};
use crate::core::inbox::Kick;

/// Whether `client_id` is online: here, or in a cluster on another node (as this node's view
/// has it: one presence message behind the other node).
fn online(api: &Api<'_>, client_id: &str) -> bool {
    api.ctx.core.registry.is_online(client_id)
        || api
            .ctx
            .cluster
            .as_ref()
            .is_some_and(|cluster| cluster.held_by_other(client_id).is_some())
}

pub(super) fn query(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?;
    let mut answer = Answer::new();
    answer.insert("OnlineStatus".into(), Value::Bool(online(api, client_id)));
    Ok(answer)
}

pub(super) fn batch_query(api: &Api<'_>) -> Result<Answer, ApiError> {
    let list: Vec<Value> = api
        .params
        .list("ClientIdList")?
        .into_iter()
        .map(|id| json!({ "ClientId": id, "OnlineStatus": online(api, id) }))
        .collect();
    let mut answer = Answer::new();
    answer.insert("OnlineStatusList".into(), Value::Array(list));
    Ok(answer)
}

/// Closes the client's connection; `Success` says whether one was online to close. In a
/// cluster, a client on another node is closed by that node: `Success` once RocketMQ took
/// the request (the close follows within one presence message's delivery).
pub(super) async fn close(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?;
    let mut closed = api.ctx.core.registry.kick(client_id, None, Kick::Closed);
    let mut message = if closed {
        "connection closed".to_owned()
    } else {
        "client is not online".to_owned()
    };
    if let (false, Some(cluster)) = (closed, &api.ctx.cluster) {
        match cluster.close_elsewhere(client_id).await {
            Ok(Some(node)) => {
                closed = true;
                message = format!("connection closed by node {node}");
            }
            Ok(None) => {}
            Err(error) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    format!("the client is on another node, which was not reached: {error}"),
                ))
            }
        }
    }
    tracing::info!(
        client = client_id,
        closed,
        by = api.params.access_key_id(),
        "CloseConnection"
    );
    let mut answer = Answer::new();
    answer.insert("Success".into(), Value::Bool(closed));
    answer.insert("Code".into(), Value::from(if closed { 200 } else { 404 }));
    answer.insert("Message".into(), Value::from(message));
    Ok(answer)
}
