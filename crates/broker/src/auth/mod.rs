//! The authentication seam and what the broker does with its answer.
//!
//! Every CONNECT goes through one [`Authenticator`]: the broker's own (mqgate-auth's
//! signature, token and device-credential modes over the AccessKeys of `[auth]` and the
//! durable registry), [`AllowAnonymous`], [`DenyAll`], or an embedder's. It answers with the
//! connection's [`Grants`], which then decide every PUBLISH and SUBSCRIBE (the rules:
//! `docs/authentication.md` in the repository). MQTT 5 clients may also go through an
//! [`EnhancedAuth`] method an embedder registered, on top of it.

mod access;
mod configured;
mod enhanced;
pub(crate) mod replicated;
mod watch;

use std::borrow::Cow;
use std::net::SocketAddr;

use mqgate_auth::{AccessPolicy, AuthMethod, Grants};
use mqgate_codec::{Connect, ConnectReturnCode};

pub use enhanced::{AuthExchange, AuthStep, EnhancedAuth};
pub use mqgate_auth::Authenticated;

pub(crate) use enhanced::EnhancedMethods;

pub(crate) use access::{admit, may_publish, may_subscribe};
pub(crate) use configured::{Access, CoreAuth};
pub(crate) use watch::TokenWatch;

/// Why a CONNECT was refused: the CONNACK code the client gets and the reason the log gets
/// (never sent to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CONNACK {}: {reason}", *code as u8)]
pub struct Refusal {
    /// The CONNACK return code (usually 4, bad username or password, or 5, not authorised).
    pub code: ConnectReturnCode,
    /// Why, for the log.
    pub reason: Cow<'static, str>,
}

impl Refusal {
    /// A refusal with `code` because of `reason`.
    pub fn new(code: ConnectReturnCode, reason: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

/// Decides whether a CONNECT may proceed and what the connection may then do. Called once
/// per connection, before the session is touched; a refusal is answered with its CONNACK
/// code and the connection closes.
///
/// ```
/// use std::net::SocketAddr;
/// use mqgate_auth::{AccessPolicy, AuthMethod, Grants, TopicAccess};
/// use mqgate_broker::{Authenticated, Authenticator, Refusal};
/// use mqgate_codec::{Connect, ConnectReturnCode};
///
/// /// Devices may only publish under `telemetry/`, and must send a username.
/// struct Telemetry;
/// impl Authenticator for Telemetry {
///     fn authenticate(&self, connect: &Connect, _: SocketAddr) -> Result<Authenticated, Refusal> {
///         if connect.username.is_none() {
///             return Err(Refusal::new(ConnectReturnCode::NotAuthorized, "no username"));
///         }
///         let policy = AccessPolicy {
///             publish: TopicAccess::filters(["telemetry/#"]).expect("valid filter"),
///             subscribe: TopicAccess::none(),
///         };
///         Ok(Authenticated {
///             method: AuthMethod::Anonymous,
///             grants: Grants::new(connect.client_id.as_str(), policy),
///         })
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// The connection's grants, or why it is refused.
    ///
    /// # Errors
    /// A [`Refusal`]: the CONNACK code to send and the reason to log.
    fn authenticate(&self, connect: &Connect, peer: SocketAddr) -> Result<Authenticated, Refusal>;
}

/// Accepts every client, whatever its credentials, with every right: development and
/// trusted embedding only.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAnonymous;

impl Authenticator for AllowAnonymous {
    fn authenticate(&self, connect: &Connect, _: SocketAddr) -> Result<Authenticated, Refusal> {
        Ok(Authenticated {
            method: AuthMethod::Anonymous,
            grants: Grants::new(connect.client_id.as_str(), AccessPolicy::all()),
        })
    }
}

/// Refuses every client (CONNACK 5, not authorised): the default when anonymous access is
/// off and neither `[auth]` nor an authenticator is configured, so a misconfigured broker is
/// closed, not open.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

impl Authenticator for DenyAll {
    fn authenticate(&self, _: &Connect, _: SocketAddr) -> Result<Authenticated, Refusal> {
        Err(Refusal::new(
            ConnectReturnCode::NotAuthorized,
            "no authenticator configured",
        ))
    }
}
