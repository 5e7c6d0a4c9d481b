//! `GET /metrics` (Prometheus text exposition format 0.0.4) and `GET /healthz`.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Ctx;

/// Every counter of [`Metrics`](crate::Metrics) as `mqgate_{name}_total` and each of its
/// [gauges](crate::metrics::GAUGES) as `mqgate_{name}`, plus gauges of the clients online
/// and of what the store holds, and with `[cluster]` the node's instance and id, its peers
/// alive and whether RocketMQ is up.
pub(super) async fn metrics(State(ctx): State<Ctx>) -> Response {
    let mut text = String::with_capacity(4096);
    let snapshot = ctx.core.metrics.snapshot();
    let (gauges, counters): (Vec<_>, Vec<_>) = snapshot
        .counters()
        .partition(|(name, _, _)| crate::metrics::GAUGES.contains(name));
    for (name, help, value) in counters {
        let _ = writeln!(text, "# HELP mqgate_{name}_total {help}");
        let _ = writeln!(text, "# TYPE mqgate_{name}_total counter");
        let _ = writeln!(text, "mqgate_{name}_total {value}");
    }
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(text, "# HELP mqgate_{name} {help}");
        let _ = writeln!(text, "# TYPE mqgate_{name} gauge");
        let _ = writeln!(text, "mqgate_{name} {value}");
    };
    for (name, help, value) in gauges {
        gauge(name, help, value);
    }
    gauge(
        "clients_online",
        "Clients with a connection open.",
        ctx.core.registry.online_count() as u64,
    );
    if let Ok(stats) = ctx.core.store.stats() {
        gauge(
            "store_messages",
            "Message bodies in the store.",
            stats.messages,
        );
        gauge(
            "store_queued",
            "Offline queue entries in the store.",
            stats.queued,
        );
        gauge(
            "store_sessions",
            "Sessions saved in the store.",
            stats.sessions,
        );
        gauge(
            "store_retained",
            "Retained messages in the store.",
            stats.retained,
        );
    }
    if let Some(cluster) = ctx.cluster.as_ref().map(|cluster| cluster.health()) {
        gauge(
            "cluster_peers_alive",
            "Other nodes of the cluster heard from within dead_after_ms.",
            cluster.peers().count() as u64,
        );
        gauge(
            "cluster_rocketmq_up",
            "1 while RocketMQ takes this node's route messages and heartbeats, else 0.",
            u64::from(cluster.rocketmq_up),
        );
        // Label values: instance and node ids are letters, digits, '-' and '_' only.
        let _ = writeln!(
            text,
            "# HELP mqgate_cluster_node This node of the cluster: its instance and node id."
        );
        let _ = writeln!(text, "# TYPE mqgate_cluster_node gauge");
        let _ = writeln!(
            text,
            "mqgate_cluster_node{{instance=\"{}\",node=\"{}\"}} 1",
            cluster.instance, cluster.node_id
        );
    }
    if let Some(queues) = &ctx.amqp_queues {
        let depths = queues.depths();
        let _ = writeln!(
            text,
            "# HELP mqgate_amqp_queue_depth Entries waiting in a cloud SDK queue."
        );
        let _ = writeln!(text, "# TYPE mqgate_amqp_queue_depth gauge");
        for (name, depth, _) in &depths {
            let _ = writeln!(text, "mqgate_amqp_queue_depth{{queue=\"{name}\"}} {depth}");
        }
        let _ = writeln!(
            text,
            "# HELP mqgate_amqp_queue_dropped_total Entries a full cloud SDK queue dropped."
        );
        let _ = writeln!(text, "# TYPE mqgate_amqp_queue_dropped_total counter");
        for (name, _, dropped) in &depths {
            let _ = writeln!(
                text,
                "mqgate_amqp_queue_dropped_total{{queue=\"{name}\"}} {dropped}"
            );
        }
    }
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// 200 `ok` while serving and the store answers (with `[cluster]`, a line more: this node,
/// RocketMQ up, the peers alive); 503 otherwise (RocketMQ down for the bridge or the cluster).
pub(super) async fn healthz(State(ctx): State<Ctx>) -> Response {
    if ctx.core.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    if let Some(bridge) = ctx.bridge.as_ref().map(|bridge| bridge.health()) {
        if !bridge.is_healthy() {
            let error = bridge
                .last_error
                .as_deref()
                .unwrap_or("inflow consumers not running");
            let body = format!(
                "rocketmq bridge down: {error} ({} buffered, {}/{} consumers)\n",
                bridge.buffered, bridge.consumers, bridge.inflow_rules
            );
            return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        }
    }
    let mut ok = String::from("ok\n");
    if let Some(cluster) = ctx.cluster.as_ref().map(|cluster| cluster.health()) {
        let peers: Vec<&str> = cluster.peers().map(|peer| peer.node_id.as_str()).collect();
        let peers = if peers.is_empty() {
            "none".to_owned()
        } else {
            peers.join(" ")
        };
        if !cluster.is_healthy() {
            let error = cluster
                .last_error
                .as_deref()
                .unwrap_or("consumers not running");
            let body = format!(
                "cluster node {} of {}: rocketmq down: {error} ({} buffered, {}/3 consumers); \
                 peers alive: {peers}\n",
                cluster.node_id, cluster.instance, cluster.buffered, cluster.consumers
            );
            return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        }
        ok.push_str(&format!(
            "cluster node {} of {}: rocketmq up; peers alive: {peers}\n",
            cluster.node_id, cluster.instance
        ));
    }
    match ctx.core.store.stats() {
        Ok(_) => (StatusCode::OK, ok).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}
