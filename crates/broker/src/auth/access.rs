//! What the connection tasks call: admit a CONNECT, then allow or deny each PUBLISH and
//! SUBSCRIBE from the connection's grants. Each refusal is logged with its reason and counted.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use mqgate_auth::{Grants, TopicAccess};
use mqgate_codec::{Connect, ConnectReturnCode};

use super::{Access, Authenticated};
use crate::Metrics;

/// Runs the authenticator on `connect`. A refusal is logged with its reason and counted in
/// `auth_failures`; so is a will whose topic the grants do not allow to be published
/// (refused with CONNACK 5: the will would be a publish the client may not make).
pub(crate) fn admit(
    access: &Access,
    metrics: &Metrics,
    connect: &Connect,
    peer: SocketAddr,
) -> Result<Authenticated, ConnectReturnCode> {
    let refused = |code: ConnectReturnCode, reason: &dyn std::fmt::Display| {
        tracing::info!(%peer, client = %connect.client_id, code = code as u8, %reason, "authentication failed");
        metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        code
    };
    // First, whatever the authenticator: `[auth]`'s own checks it too, an embedder's does not.
    if access.blacklists(&connect.client_id) {
        return Err(refused(
            ConnectReturnCode::NotAuthorized,
            &"client id is on the connect blacklist",
        ));
    }
    let admitted = access
        .authenticator
        .authenticate(connect, peer)
        .map_err(|refusal| refused(refusal.code, &refusal.reason))?;
    if let Some(will) = &connect.will {
        // The grants alone: an invalid will topic is the session's business, as before.
        if !admitted.grants.allows_publish_topic(&will.topic) {
            let reason = format!("will topic {:?} may not be published", will.topic.as_str());
            return Err(refused(ConnectReturnCode::NotAuthorized, &reason));
        }
    }
    Ok(admitted)
}

/// Whether the connection may publish to `topic`, a topic name the caller has validated. A
/// refused PUBLISH is dropped, counted in `publish_denied` and logged; the caller still
/// acknowledges it (QoS 1 and 2), so the client does not resend it forever, and the
/// connection stays.
pub(crate) fn may_publish(metrics: &Metrics, grants: &Grants, topic: &str) -> bool {
    // The common case (anonymous, an unrestricted key) costs one comparison per message.
    if matches!(grants.policy().publish, TopicAccess::All) || grants.may_publish(topic) {
        return true;
    }
    tracing::info!(
        client = grants.client_id(),
        topic,
        "PUBLISH denied by grants; dropped"
    );
    metrics.publish_denied.fetch_add(1, Ordering::Relaxed);
    false
}

/// Whether the connection may subscribe to `filter`: its grants allow it and no
/// `refuse_subscribe` filter contains it. A refused filter gets 0x80 in the SUBACK, is
/// counted in `subscribe_denied` and logged.
pub(crate) fn may_subscribe(
    access: &Access,
    metrics: &Metrics,
    grants: &Grants,
    filter: &str,
) -> bool {
    let refused = access.refuses_subscription(filter);
    if !refused && grants.may_subscribe(filter) {
        return true;
    }
    let by = if refused {
        "refuse_subscribe"
    } else {
        "grants"
    };
    tracing::info!(
        client = grants.client_id(),
        filter,
        "SUBSCRIBE denied by {by}"
    );
    metrics.subscribe_denied.fetch_add(1, Ordering::Relaxed);
    false
}
