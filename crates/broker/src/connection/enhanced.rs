//! MQTT 5 enhanced authentication on a connection (MQTT 5.0 4.12): the AUTH exchange
//! between a CONNECT naming an Authentication Method and its CONNACK, and re-authentication
//! once the client is online.

use std::sync::Arc;

use bytes::Bytes;
use mqgate_codec::v5::{self, ReasonAndProperties};
use mqgate_codec::{Properties, Property, PropertyId, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite};

use super::close::CloseReason;
use crate::auth::{AuthExchange, AuthStep, EnhancedAuth, EnhancedMethods};
use crate::transport::io::Io;

/// A connection authenticated with an enhanced method: what re-authentication uses.
pub(crate) struct Enhanced {
    /// The Authentication Method, as the CONNECT named it.
    pub(crate) name: String,
    pub(crate) method: Arc<dyn EnhancedAuth>,
    /// A re-authentication under way.
    pub(crate) exchange: Option<Box<dyn AuthExchange>>,
}

impl std::fmt::Debug for Enhanced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enhanced")
            .field("name", &self.name)
            .field("reauthenticating", &self.exchange.is_some())
            .finish_non_exhaustive()
    }
}

/// A CONNECT's exchange that succeeded: the method, and the Authentication Data its CONNACK
/// carries.
pub(crate) struct Authenticated5 {
    pub(crate) enhanced: Enhanced,
    pub(crate) data: Option<Bytes>,
}

/// How a CONNECT's exchange failed: the CONNACK reason to refuse it with, or `None` when
/// the client went away (or broke the protocol) and nothing is answered.
pub(crate) type Refused = Option<ReasonCode>;

/// The Authentication Method of `properties`.
pub(crate) fn method_of(properties: &Properties) -> Option<&str> {
    properties
        .get(PropertyId::AuthenticationMethod)
        .and_then(|p| p.as_str())
}

/// The Authentication Data of `properties`.
pub(crate) fn data_of(properties: &Properties) -> Option<Bytes> {
    match properties.get(PropertyId::AuthenticationData)? {
        Property::Binary(_, data) => Some(Bytes::copy_from_slice(data)),
        _ => None,
    }
}

/// The properties naming `method`, with `data` if any.
pub(crate) fn properties(method: &str, data: Option<&[u8]>) -> Properties {
    let mut props = vec![Property::Utf8(PropertyId::AuthenticationMethod, method)];
    if let Some(data) = data {
        props.push(Property::Binary(PropertyId::AuthenticationData, data));
    }
    Properties::build(props).unwrap_or_default()
}

/// An AUTH packet of `reason` under `method`.
fn auth(reason: ReasonCode, method: &str, data: Option<&[u8]>) -> v5::Packet {
    v5::Packet::Auth(ReasonAndProperties {
        reason,
        properties: properties(method, data),
    })
}

/// Runs the exchange of a CONNECT that named the method `name` with `data`, over `io`, until
/// the method accepts or refuses; the caller bounds it in time. Every AUTH of the client must
/// continue it (0x18) under the same method (MQTT-4.12.0-3, -5).
pub(crate) async fn connect_exchange<S>(
    io: &mut Io<S>,
    methods: &EnhancedMethods,
    client_id: &str,
    name: String,
    data: Option<Bytes>,
    write_limit: std::time::Duration,
) -> Result<Authenticated5, Refused>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // An unknown method: CONNACK 0x8C (MQTT-4.12.0-1).
    let method = methods
        .get(&name)
        .ok_or(Some(ReasonCode::BadAuthenticationMethod))?
        .clone();
    let mut exchange = method.start(client_id);
    let mut data = data;
    loop {
        match exchange.step(data.as_deref()) {
            AuthStep::Success(out) => {
                return Ok(Authenticated5 {
                    enhanced: Enhanced {
                        name,
                        method,
                        exchange: None,
                    },
                    data: out,
                })
            }
            AuthStep::Failure => return Err(Some(ReasonCode::NotAuthorized)),
            AuthStep::Continue(out) => {
                io.queue([auth(
                    ReasonCode::ContinueAuthentication,
                    &name,
                    out.as_deref(),
                )]);
                io.send(write_limit).await.map_err(|_| None)?;
                let answer = loop {
                    if let Some(packet) = io.decode_v5().map_err(|_| None)? {
                        break packet;
                    }
                    if io.read_more().await.map_err(|_| None)? == 0 {
                        return Err(None);
                    }
                };
                match answer {
                    v5::Packet::Auth(a)
                        if a.reason == ReasonCode::ContinueAuthentication
                            && method_of(&a.properties) == Some(name.as_str()) =>
                    {
                        data = data_of(&a.properties);
                    }
                    v5::Packet::Disconnect(_) => return Err(None),
                    _ => return Err(Some(ReasonCode::ProtocolError)),
                }
            }
        }
    }
}

/// Handles an AUTH from an online client: the start (0x19) or a step (0x18) of a
/// re-authentication under the method it connected with (MQTT-4.12.1-1). Returns the AUTH to
/// send back; a failed re-authentication closes the connection with DISCONNECT 0x87.
pub(crate) fn reauthenticate(
    enhanced: Option<&mut Enhanced>,
    client_id: &str,
    packet: &ReasonAndProperties,
) -> Result<v5::Packet, CloseReason> {
    let Some(enhanced) = enhanced else {
        // MQTT-4.12.0-6: no AUTH without an Authentication Method in the CONNECT.
        return Err(CloseReason::ProtocolV5(
            ReasonCode::ProtocolError,
            "AUTH without enhanced authentication",
        ));
    };
    if method_of(&packet.properties) != Some(enhanced.name.as_str()) {
        return Err(CloseReason::ProtocolV5(
            ReasonCode::ProtocolError,
            "AUTH with another authentication method",
        ));
    }
    match (packet.reason, enhanced.exchange.is_some()) {
        (ReasonCode::ReAuthenticate, false) => {
            enhanced.exchange = Some(enhanced.method.start(client_id));
        }
        (ReasonCode::ContinueAuthentication, true) => {}
        _ => {
            return Err(CloseReason::ProtocolV5(
                ReasonCode::ProtocolError,
                "AUTH out of its exchange",
            ))
        }
    }
    let data = data_of(&packet.properties);
    let step = match &mut enhanced.exchange {
        Some(exchange) => exchange.step(data.as_deref()),
        None => AuthStep::Failure,
    };
    match step {
        AuthStep::Continue(out) => Ok(auth(
            ReasonCode::ContinueAuthentication,
            &enhanced.name,
            out.as_deref(),
        )),
        AuthStep::Success(out) => {
            enhanced.exchange = None;
            Ok(auth(ReasonCode::Success, &enhanced.name, out.as_deref()))
        }
        AuthStep::Failure => Err(CloseReason::ProtocolV5(
            ReasonCode::NotAuthorized,
            "re-authentication failed",
        )),
    }
}
