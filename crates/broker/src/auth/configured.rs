//! [`Access`]: the authenticator a broker uses, chosen at start from the embedder's choice,
//! `[auth]` and `allow_anonymous`, and mqgate-auth's authenticator over the durable registry.

use std::net::SocketAddr;
use std::sync::Arc;

use mqgate_auth::{openapi::NonceGuard, GroupRecord, Registry};
use mqgate_codec::{Connect, ConnectReturnCode};
use mqgate_store::{DurableRegistry, Store};
use mqgate_topic::{SubscriptionFilter, TopicFilter};

use super::replicated::Replicated;
use super::{AllowAnonymous, Authenticated, Authenticator, DenyAll, Refusal, TokenWatch};
use crate::clock::unix_time_ms;
use crate::{BrokerConfig, BrokerError};

/// mqgate-auth's authenticator over the registry kept in the broker's store.
pub(crate) type CoreAuth = mqgate_auth::Authenticator<Arc<Replicated>>;

/// Everything about who may do what, shared by the connection tasks and the HTTP API.
pub(crate) struct Access {
    /// Decides CONNECTs.
    pub(crate) authenticator: Box<dyn Authenticator>,
    /// The AccessKeys and registries of `[auth]`, when configured: the HTTP API's back end.
    pub(crate) core: Option<Arc<CoreAuth>>,
    /// Replay protection of signed API requests.
    pub(crate) nonces: NonceGuard,
    /// Live token connections, when they must end with their token.
    pub(crate) tokens: TokenWatch,
    /// `refuse_subscribe`: SUBSCRIBE filters refused to everyone, whatever the grants.
    refused_subscriptions: Vec<TopicFilter>,
}

impl Access {
    /// `authenticator` alone: no `[auth]`, no registry (fuzzing, tests).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn only(authenticator: Box<dyn Authenticator>) -> Self {
        Access {
            authenticator,
            core: None,
            nonces: NonceGuard::default(),
            tokens: TokenWatch::new(false),
            refused_subscriptions: Vec::new(),
        }
    }

    /// Whether `client_id` is on the connect blacklist (kept with `[auth]`'s registry; none
    /// without it).
    pub(crate) fn blacklists(&self, client_id: &str) -> bool {
        self.core
            .as_ref()
            .is_some_and(|core| core.is_connect_blacklisted(client_id))
    }

    /// Whether `filter` (plain or `$share/{group}/{filter}`) lies within a `refuse_subscribe`
    /// filter: every topic it can match is matched by one. A wider filter is not refused.
    pub(crate) fn refuses_subscription(&self, filter: &str) -> bool {
        if self.refused_subscriptions.is_empty() {
            return false;
        }
        SubscriptionFilter::parse(filter).is_ok_and(|parsed| {
            self.refused_subscriptions
                .iter()
                .any(|refused| refused.contains(parsed.filter()))
        })
    }

    /// Chooses the authenticator: the embedder's if given, else `[auth]`'s if configured,
    /// else anonymous when allowed, else [`DenyAll`]. With `[auth]`, its registry is loaded
    /// from `store` and the configured groups are registered.
    pub(crate) fn build(
        config: &BrokerConfig,
        embedder: Option<Box<dyn Authenticator>>,
        store: &Arc<dyn Store>,
    ) -> Result<Self, BrokerError> {
        let core = match &config.auth {
            Some(settings) => {
                let registry = DurableRegistry::load(store.clone())
                    .map_err(|e| BrokerError::Store(format!("registry: {e}")))?;
                let registry =
                    Arc::new(Replicated::new(registry, store.clone()).map_err(store_error)?);
                let now = unix_time_ms();
                for group in &settings.groups {
                    if !group.starts_with("GID_") {
                        return Err(BrokerError::Config(format!(
                            "auth.groups: {group:?} does not start with GID_"
                        )));
                    }
                    let known = registry.group(group).map_err(store_error)?;
                    if known.is_none() {
                        registry
                            .put_group(GroupRecord::new(group, now))
                            .map_err(store_error)?;
                    }
                }
                let auth_config = settings.auth_config(config.allow_anonymous)?;
                Some(Arc::new(CoreAuth::new(auth_config, registry)))
            }
            None => None,
        };
        let authenticator: Box<dyn Authenticator> = match (embedder, &core) {
            (Some(own), _) => own,
            (None, Some(core)) => {
                if config.allow_anonymous {
                    tracing::warn!("ANONYMOUS ACCESS ALLOWED: clients without a username connect with every right");
                }
                Box::new(Configured(core.clone()))
            }
            (None, None) if config.allow_anonymous => {
                tracing::warn!("ANONYMOUS ACCESS ALLOWED: any client may connect without credentials (development mode)");
                Box::new(AllowAnonymous)
            }
            (None, None) => {
                tracing::warn!("no authenticator configured and anonymous access off: every CONNECT is refused");
                Box::new(DenyAll)
            }
        };
        let (window, capacity, disconnect) =
            config
                .auth
                .as_ref()
                .map_or((mqgate_auth::openapi::DEFAULT_WINDOW_MS, 0, false), |a| {
                    (
                        a.signature_window_ms,
                        a.nonce_capacity,
                        a.disconnect_on_token_invalid,
                    )
                });
        let refused_subscriptions = config
            .refuse_subscribe
            .iter()
            .map(|filter| {
                TopicFilter::parse(filter)
                    .map_err(|e| BrokerError::Config(format!("refuse_subscribe: {filter:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Access {
            authenticator,
            core,
            nonces: NonceGuard::new(window, capacity),
            tokens: TokenWatch::new(disconnect),
            refused_subscriptions,
        })
    }
}

fn store_error(error: mqgate_auth::RegistryError) -> BrokerError {
    BrokerError::Store(error.to_string())
}

/// The `[auth]` authenticator: mqgate-auth's three modes, at the broker's clock.
struct Configured(Arc<CoreAuth>);

impl Authenticator for Configured {
    fn authenticate(&self, connect: &Connect, _: SocketAddr) -> Result<Authenticated, Refusal> {
        self.0
            .authenticate(
                &connect.client_id,
                connect.username.as_deref(),
                connect.password.as_deref(),
                unix_time_ms(),
            )
            .map_err(|failure| {
                let code = ConnectReturnCode::from_u8(failure.code.as_u8())
                    .unwrap_or(ConnectReturnCode::NotAuthorized);
                Refusal::new(code, failure.reason.to_string())
            })
    }
}
