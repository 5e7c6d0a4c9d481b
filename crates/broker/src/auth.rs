//! The authentication seam. The real authenticators (signature, token, device credential)
//! come from `mqgate-auth` in a later landing; until then a broker either allows anonymous
//! access (explicitly configured) or refuses every client.

use std::net::SocketAddr;

use mqgate_codec::{Connect, ConnectReturnCode};

/// Decides whether a CONNECT may proceed. Called once per connection, before the session is
/// touched; a refusal is answered with that CONNACK return code and the connection closes.
pub trait Authenticator: Send + Sync + 'static {
    /// `Ok(())` to accept; `Err(code)` to refuse with that CONNACK code.
    ///
    /// # Errors
    /// The CONNACK return code to refuse with (usually 4 or 5).
    fn authenticate(&self, connect: &Connect, peer: SocketAddr) -> Result<(), ConnectReturnCode>;
}

/// Accepts every client, whatever its credentials: development and trusted embedding only.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAnonymous;

impl Authenticator for AllowAnonymous {
    fn authenticate(&self, _: &Connect, _: SocketAddr) -> Result<(), ConnectReturnCode> {
        Ok(())
    }
}

/// Refuses every client (CONNACK 5, not authorised): the default when anonymous access is
/// off and no authenticator is configured, so a misconfigured broker is closed, not open.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

impl Authenticator for DenyAll {
    fn authenticate(&self, _: &Connect, _: SocketAddr) -> Result<(), ConnectReturnCode> {
        Err(ConnectReturnCode::NotAuthorized)
    }
}
