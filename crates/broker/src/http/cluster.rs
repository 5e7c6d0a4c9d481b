//! `ListClusterNodes`: the nodes of the cluster this node sees alive, itself included
//! (mqgate's own action: the managed service shows no nodes).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{Answer, ApiError, HttpCtx};

/// `Instance`, `NodeId` (the node answering), `RocketMqUp`, and `Nodes`: each alive node's
/// `NodeId`, `Self`, `StartedAt` and `LastHeartbeat` (ms since the epoch), `Address` (its
/// MQTT listener) and `OnlineClients` (as of its last heartbeat; now for the node answering),
/// by node id. 404 `Cluster.NotConfigured` without `[cluster]`.
pub(super) fn list(ctx: &HttpCtx) -> Result<Answer, ApiError> {
    let cluster = ctx.cluster.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "Cluster.NotConfigured",
            "this broker is a single node (no [cluster] section)",
        )
    })?;
    let health = cluster.health();
    let nodes: Vec<Value> = health
        .nodes
        .iter()
        .map(|node| {
            json!({
                "NodeId": node.node_id,
                "Self": node.this_node,
                "StartedAt": node.started_ms,
                "LastHeartbeat": node.last_heartbeat_ms,
                "Address": node.address,
                "OnlineClients": node.clients,
            })
        })
        .collect();
    let mut answer = Answer::new();
    answer.insert("Instance".into(), Value::from(health.instance));
    answer.insert("NodeId".into(), Value::from(health.node_id));
    answer.insert("RocketMqUp".into(), Value::Bool(health.rocketmq_up));
    answer.insert("Nodes".into(), Value::Array(nodes));
    Ok(answer)
}
