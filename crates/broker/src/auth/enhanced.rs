//! MQTT 5 enhanced authentication: methods an embedder plugs in, named by the
//! Authentication Method a client's CONNECT carries, and driven by AUTH packets.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

/// An MQTT 5 enhanced authentication method (MQTT 5.0 4.12): a challenge and response
/// carried in the Authentication Data of CONNECT, AUTH and CONNACK, under a method name both
/// sides know. Registered with
/// [`BrokerBuilder::enhanced_auth`](crate::BrokerBuilder::enhanced_auth).
///
/// It comes on top of the broker's authentication (`[auth]`, anonymous access or an
/// [`Authenticator`](crate::Authenticator)), which still decides whether the CONNECT is let
/// in and with which grants: a method proves something more, it grants nothing. A CONNECT
/// naming a method the broker does not have is refused with CONNACK 0x8C.
///
/// ```
/// use bytes::Bytes;
/// use mqgate_broker::{AuthExchange, AuthStep, EnhancedAuth};
///
/// /// The client must answer the challenge `nonce` with `nonce` reversed.
/// struct Reverse;
/// struct ReverseExchange { sent: Option<Vec<u8>> }
///
/// impl EnhancedAuth for Reverse {
///     fn method(&self) -> &str { "reverse" }
///     fn start(&self, _client_id: &str) -> Box<dyn AuthExchange> {
///         Box::new(ReverseExchange { sent: None })
///     }
/// }
///
/// impl AuthExchange for ReverseExchange {
///     fn step(&mut self, data: Option<&[u8]>) -> AuthStep {
///         match &self.sent {
///             None => {
///                 let nonce = b"abc".to_vec();
///                 self.sent = Some(nonce.clone());
///                 AuthStep::Continue(Some(Bytes::from(nonce)))
///             }
///             Some(nonce) => {
///                 let expected: Vec<u8> = nonce.iter().rev().copied().collect();
///                 if data == Some(&expected[..]) {
///                     AuthStep::Success(None)
///                 } else {
///                     AuthStep::Failure
///                 }
///             }
///         }
///     }
/// }
/// # let mut exchange = Reverse.start("c");
/// # assert!(matches!(exchange.step(None), AuthStep::Continue(_)));
/// # assert!(matches!(exchange.step(Some(b"cba")), AuthStep::Success(None)));
/// ```
pub trait EnhancedAuth: Send + Sync + 'static {
    /// The Authentication Method this serves, as clients name it (`SCRAM-SHA-256`, ...).
    fn method(&self) -> &str;

    /// A new exchange with `client_id`: at its CONNECT, or when it re-authenticates.
    fn start(&self, client_id: &str) -> Box<dyn AuthExchange>;
}

/// One authentication exchange with one client, step by step.
pub trait AuthExchange: Send {
    /// The next step, given the Authentication Data the client sent (first its CONNECT's or
    /// re-authenticating AUTH's, then each AUTH's answer; `None` when it sent none).
    fn step(&mut self, data: Option<&[u8]>) -> AuthStep;
}

/// What an [`AuthExchange`] says after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// More is needed: the broker sends AUTH 0x18 (Continue authentication) with this
    /// Authentication Data, and the client's answering AUTH is the next step.
    Continue(Option<Bytes>),
    /// Authenticated: the CONNACK (or, when re-authenticating, AUTH 0x00) carries this
    /// Authentication Data.
    Success(Option<Bytes>),
    /// Refused: CONNACK 0x87 (Not authorized), or when re-authenticating DISCONNECT 0x87;
    /// the connection closes.
    Failure,
}

/// The enhanced authentication methods of a broker, by method name.
#[derive(Clone, Default)]
pub(crate) struct EnhancedMethods {
    by_name: HashMap<String, Arc<dyn EnhancedAuth>>,
}

impl std::fmt::Debug for EnhancedMethods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl EnhancedMethods {
    /// Adds `method` (replacing one of the same name).
    pub(crate) fn add(&mut self, method: Arc<dyn EnhancedAuth>) {
        self.by_name.insert(method.method().to_owned(), method);
    }

    /// The method named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn EnhancedAuth>> {
        self.by_name.get(name)
    }
}
