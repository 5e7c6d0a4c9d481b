//! [`TokenWatch`]: ends token connections whose token expired or was revoked, when
//! `auth.disconnect_on_token_invalid` asks for it (off by default: then a token's expiry or
//! revocation stops only new connections, as the model service does).

use std::sync::Arc;

use mqgate_auth::{AuthMethod, Registry as _};
use mqgate_status::ChannelId;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Authenticated, CoreAuth};
use crate::clock::unix_time_ms;
use crate::core::inbox::Kick;
use crate::core::registry::Registry;

/// One live connection that logged in with tokens.
#[derive(Debug)]
struct Watched {
    client: Arc<str>,
    channel: ChannelId,
    tokens: Vec<String>,
}

/// The live token connections, re-checked every `token_check_interval_ms` and at once after
/// a revocation. Entries of connections that ended are dropped at the next check, so the
/// list holds at most one entry per live token connection (plus those that ended since).
#[derive(Debug)]
pub(crate) struct TokenWatch {
    enabled: bool,
    live: Mutex<Vec<Watched>>,
    wake: Notify,
}

impl TokenWatch {
    pub(crate) fn new(enabled: bool) -> Self {
        TokenWatch {
            enabled,
            live: Mutex::new(Vec::new()),
            wake: Notify::new(),
        }
    }

    /// Remembers a connection that is now online, if it logged in with tokens.
    pub(crate) fn watch(&self, client: &Arc<str>, channel: ChannelId, admitted: &Authenticated) {
        if let (true, AuthMethod::Token { tokens, .. }) = (self.enabled, &admitted.method) {
            self.live.lock().push(Watched {
                client: client.clone(),
                channel,
                tokens: tokens.clone(),
            });
        }
    }

    /// Asks for a check now (a token was revoked).
    pub(crate) fn recheck(&self) {
        self.wake.notify_one();
    }

    /// Whether connections are watched at all (`disconnect_on_token_invalid`).
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Resolves when a check was asked for ([`recheck`](Self::recheck)).
    pub(crate) async fn asked(&self) {
        self.wake.notified().await;
    }

    /// Closes the connections whose tokens are no longer valid; forgets ended ones.
    pub(crate) fn sweep(&self, auth: Option<&CoreAuth>, registry: &Registry) {
        let Some(core) = auth else {
            return;
        };
        let now = unix_time_ms();
        let mut live = std::mem::take(&mut *self.live.lock());
        live.retain(|watched| {
            if !registry.holds(&watched.client, watched.channel) {
                return false;
            }
            let valid = watched.tokens.iter().all(|token| {
                match core.registry().token(token) {
                    Ok(record) => record.is_some_and(|r| r.is_valid(now)),
                    // Storage trouble is no proof the token went bad: keep the connection.
                    Err(_) => true,
                }
            });
            if !valid {
                tracing::info!(client = %watched.client, "token expired or revoked: closing the connection");
                registry.kick(&watched.client, Some(watched.channel), Kick::TokenInvalid);
            }
            valid
        });
        self.live.lock().append(&mut live);
    }
}
