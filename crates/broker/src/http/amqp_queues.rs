//! `ListAmqpQueues` and `DeleteAmqpQueue`: the cloud SDK endpoint's queues, as an operator
//! sees and removes them (mqgate's own actions: the managed service has no such queues).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{Answer, ApiError, HttpCtx};

/// The endpoint's queues, or 404 when it is not served.
fn queues(ctx: &HttpCtx) -> Result<&crate::amqp::queue::Queues, ApiError> {
    ctx.amqp_queues.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "AmqpEndpoint.NotServed",
            "the broker serves no cloud SDK endpoint (no amqp listener)",
        )
    })
}

/// Every queue: `Name` (a parent topic, or `STATUS/{group}`), `Depth` (messages waiting)
/// and `Dropped` (messages its bound dropped since start).
pub(super) fn list(ctx: &HttpCtx) -> Result<Answer, ApiError> {
    let list: Vec<Value> = queues(ctx)?
        .depths()
        .into_iter()
        .map(|(name, depth, dropped)| json!({ "Name": name, "Depth": depth, "Dropped": dropped }))
        .collect();
    let mut answer = Answer::new();
    answer.insert("Queues".into(), Value::Array(list));
    Ok(answer)
}

/// Removes the queue `Name` with every message it held, from memory and the store; it is not
/// brought back at the next start (unless `[amqp] queues` names it). `Success` says whether
/// such a queue existed.
pub(super) async fn delete(ctx: &HttpCtx, name: &str, by: &str) -> Result<Answer, ApiError> {
    let removed = queues(ctx)?.remove(name).await;
    tracing::info!(queue = name, removed, by, "DeleteAmqpQueue");
    let mut answer = Answer::new();
    answer.insert("Success".into(), Value::Bool(removed));
    Ok(answer)
}
