//! `ListClusterNodes`: the nodes of the cluster this node sees alive, itself included, and
//! `ListClusterNodeClients`: the clients online at one of them (mqgate's own actions: the
//! managed service shows no nodes).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::params::Params;
use super::{Answer, ApiError, HttpCtx};

/// Most client ids one `ListClusterNodeClients` answer gives.
const MAX_CLIENTS: u64 = 1000;

/// `Instance`, `NodeId` (the node answering), `RocketMqUp`, and `Nodes`: each alive node's
/// `NodeId`, `Self`, `StartedAt` and `LastHeartbeat` (ms since the epoch), `Address` (its
/// MQTT listener) and `OnlineClients` (as of its last heartbeat; now for the node answering),
/// by node id. 404 `Cluster.NotConfigured` without `[cluster]`.
pub(super) fn list(ctx: &HttpCtx) -> Result<Answer, ApiError> {
    let cluster = the_cluster(ctx)?;
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

/// The cluster part of this broker; 404 `Cluster.NotConfigured` without `[cluster]`.
fn the_cluster(ctx: &HttpCtx) -> Result<&crate::cluster::Cluster, ApiError> {
    ctx.cluster.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "Cluster.NotConfigured",
            "this broker is a single node (no [cluster] section)",
        )
    })
}

/// `NodeId` (required), `MaxResults` (1 to 1000, default 100) and `NextToken` (from the
/// previous page): `NodeId` and `ClientIds`, the client ids this node's presence view has
/// online at that node, sorted, and `NextToken` when more follow. A node id the view has no
/// client of gives an empty list. 404 `Cluster.NotConfigured` without `[cluster]`.
pub(super) fn clients(ctx: &HttpCtx, params: &Params) -> Result<Answer, ApiError> {
    let cluster = the_cluster(ctx)?;
    let node = params.required("NodeId")?;
    let max = params.number("MaxResults", 100)?;
    if !(1..=MAX_CLIENTS).contains(&max) {
        return Err(ApiError::invalid(
            "MaxResults",
            format!("{max} is not from 1 to {MAX_CLIENTS}"),
        ));
    }
    let after = params.optional("NextToken");
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let (clients, more) = cluster.clients_of(node, after, max);
    let mut answer = Answer::new();
    answer.insert("NodeId".into(), Value::from(node));
    if more {
        if let Some(last) = clients.last() {
            answer.insert("NextToken".into(), Value::from(last.as_str()));
        }
    }
    answer.insert(
        "ClientIds".into(),
        Value::Array(clients.into_iter().map(Value::from).collect()),
    );
    Ok(answer)
}
