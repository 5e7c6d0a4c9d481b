//! The `[auth]` and `[http]` sections of the configuration file.

use std::fmt;
use std::net::SocketAddr;

use mqgate_auth::{AccessKey, AccessPolicy, AuthConfig, TopicAccess};
use serde::Deserialize;

use crate::BrokerError;

/// `[auth]`: who may connect and call the HTTP API. Without this section the broker has no
/// AccessKeys: only anonymous access (if `allow_anonymous`) or an embedder's authenticator.
///
/// ```
/// use mqgate_broker::BrokerConfig;
/// let config = BrokerConfig::from_toml_str(r#"
///     [auth]
///     instance_id = "mqtt-test"
///     groups = ["GID_shop"]
///     [[auth.access_keys]]
///     id = "LTAI_backend"
///     secret = "s3cret"
///     publish = ["shop/#"]
/// "#)?;
/// let auth = config.auth.unwrap();
/// assert_eq!(auth.access_keys[0].id, "LTAI_backend");
/// assert!(format!("{auth:?}").contains("<redacted>"));
/// # Ok::<(), mqgate_broker::BrokerError>(())
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// This broker's instance id: usernames and API requests must name it.
    pub instance_id: String,
    /// The AccessKeys backends sign with (CONNECT signature and token modes, the HTTP API).
    #[serde(default)]
    pub access_keys: Vec<AccessKeySettings>,
    /// Groups registered at start if they are not yet (the API can add more).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Close connections that logged in with a token once it expires or is revoked. Off by
    /// default: expiry and revocation then stop only new connections.
    #[serde(default)]
    pub disconnect_on_token_invalid: bool,
    /// How often live token connections are re-checked when
    /// [`disconnect_on_token_invalid`](Self::disconnect_on_token_invalid) is on, in ms
    /// (a revocation through the API is acted on at once).
    #[serde(default = "default_token_check_ms")]
    pub token_check_interval_ms: u64,
    /// Topic filters device-credential connections may publish to; everything if absent.
    #[serde(default)]
    pub device_publish: Option<Vec<String>>,
    /// Topic filters device-credential connections may subscribe to; everything if absent.
    #[serde(default)]
    pub device_subscribe: Option<Vec<String>>,
    /// Accepted distance between an API request's date and the broker's clock, in ms.
    #[serde(default = "default_window_ms")]
    pub signature_window_ms: u64,
    /// Most API request nonces remembered at once (replay protection); further requests are
    /// refused until old ones leave the window.
    #[serde(default = "default_nonce_capacity")]
    pub nonce_capacity: usize,
}

fn default_token_check_ms() -> u64 {
    1000
}
fn default_window_ms() -> u64 {
    mqgate_auth::openapi::DEFAULT_WINDOW_MS
}
fn default_nonce_capacity() -> usize {
    mqgate_auth::openapi::DEFAULT_NONCE_CAPACITY
}

/// Secrets stay out of logs.
impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("instance_id", &self.instance_id)
            .field("access_keys", &self.access_keys)
            .field("groups", &self.groups)
            .field(
                "disconnect_on_token_invalid",
                &self.disconnect_on_token_invalid,
            )
            .finish_non_exhaustive()
    }
}

/// One `[[auth.access_keys]]` entry.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeySettings {
    /// The AccessKeyId.
    pub id: String,
    /// The AccessKey secret.
    pub secret: String,
    /// Topic filters signature-mode connections with this key may publish to (and the
    /// `W` bound of the tokens it issues, and what `SendMessage` may send); everything if
    /// absent.
    #[serde(default)]
    pub publish: Option<Vec<String>>,
    /// Topic filters they may subscribe to (and the `R` bound of its tokens); everything if
    /// absent.
    #[serde(default)]
    pub subscribe: Option<Vec<String>>,
    /// Whether the key may call the HTTP API. On by default.
    #[serde(default = "yes")]
    pub api: bool,
}

fn yes() -> bool {
    true
}

impl fmt::Debug for AccessKeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKeySettings")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("publish", &self.publish)
            .field("subscribe", &self.subscribe)
            .field("api", &self.api)
            .finish()
    }
}

impl AuthSettings {
    /// The auth crate's configuration; `allow_anonymous` comes from the top level.
    ///
    /// # Errors
    /// [`BrokerError::Config`] naming a topic filter that does not parse or an empty id.
    pub fn auth_config(&self, allow_anonymous: bool) -> Result<AuthConfig, BrokerError> {
        if self.instance_id.is_empty() || self.instance_id.contains('|') {
            return Err(BrokerError::Config(
                "auth.instance_id must be non-empty and contain no '|'".into(),
            ));
        }
        let mut config = AuthConfig::new(&self.instance_id).with_anonymous(allow_anonymous);
        config.device_credential_policy = policy(
            "auth.device_publish / device_subscribe",
            &self.device_publish,
            &self.device_subscribe,
        )?;
        for key in &self.access_keys {
            if key.id.is_empty() || key.id.contains('|') {
                return Err(BrokerError::Config(format!(
                    "AccessKey id {:?} must be non-empty and contain no '|'",
                    key.id
                )));
            }
            let mut access = AccessKey::new(&key.id, &key.secret);
            access.policy = policy(&key.id, &key.publish, &key.subscribe)?;
            config = config.with_access_key(access);
        }
        Ok(config)
    }

    /// Whether `access_key_id` may call the HTTP API.
    pub fn api_allowed(&self, access_key_id: &str) -> bool {
        self.access_keys
            .iter()
            .rev()
            .find(|key| key.id == access_key_id)
            .is_some_and(|key| key.api)
    }
}

fn policy(
    owner: &str,
    publish: &Option<Vec<String>>,
    subscribe: &Option<Vec<String>>,
) -> Result<AccessPolicy, BrokerError> {
    let access = |filters: &Option<Vec<String>>| match filters {
        None => Ok(TopicAccess::All),
        Some(list) => TopicAccess::filters(list)
            .map_err(|e| BrokerError::Config(format!("{owner}: bad topic filter: {e}"))),
    };
    Ok(AccessPolicy {
        publish: access(publish)?,
        subscribe: access(subscribe)?,
    })
}

/// `[http]`: the HTTP listener (OpenAPI actions, `/metrics`, `/healthz`, the console).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Whether the listener starts. On by default.
    pub enabled: bool,
    /// Where it listens; default `127.0.0.1:8090`.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get a 413.
    pub max_body_bytes: usize,
    /// Most HTTP connections open at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// A connection with nothing read or written for this long is closed, in ms. Keep it
    /// above `limits.backpressure_timeout`: `SendMessage` may wait that long for receivers.
    pub idle_timeout_ms: u64,
    /// Serve HTTPS with the certificate and key of `[listeners.tls]` (which must then be
    /// configured). Off by default: plain HTTP.
    pub tls: bool,
    /// Whether the operator console (`/console`) is served. It needs `[auth]` too: an
    /// operator signs in with an AccessKey whose `api` is on. Over plain HTTP it signs in
    /// only from a loopback address.
    pub console: bool,
    /// How long a console session lasts after sign-in, in ms (30 minutes by default).
    pub console_session_ms: u64,
    /// Failed console sign-ins from one address within `console_lockout_ms` before further
    /// attempts from it are refused (429) until that window has passed.
    pub console_max_failures: u32,
    /// The window of `console_max_failures`, in ms (one minute by default).
    pub console_lockout_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            max_body_bytes: 64 * 1024,
            max_connections: 256,
            idle_timeout_ms: 60_000,
            tls: false,
            console: true,
            console_session_ms: 30 * 60 * 1000,
            console_max_failures: 5,
            console_lockout_ms: 60_000,
        }
    }
}

impl HttpSettings {
    /// No HTTP listener (tests and embedding).
    pub fn disabled() -> Self {
        HttpSettings {
            enabled: false,
            ..HttpSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> Result<AuthSettings, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn bad_filters_and_ids_are_config_errors() {
        let bad = [
            "instance_id = \"\"",
            "instance_id = \"a|b\"",
            "instance_id = \"i\"\n[[access_keys]]\nid = \"\"\nsecret = \"s\"",
            "instance_id = \"i\"\n[[access_keys]]\nid = \"k\"\nsecret = \"s\"\npublish = [\"a/#/b\"]",
            "instance_id = \"i\"\ndevice_subscribe = [\"#/x\"]",
        ];
        for text in bad {
            let parsed = settings(text).unwrap();
            assert!(parsed.auth_config(false).is_err(), "{text}");
        }
    }

    #[test]
    fn keys_become_policies() {
        let parsed = settings(
            "instance_id = \"i\"\n[[access_keys]]\nid = \"k\"\nsecret = \"s\"\npublish = [\"a/#\"]\napi = false",
        )
        .unwrap();
        let config = parsed.auth_config(true).unwrap();
        assert!(config.allow_anonymous);
        let key = &config.access_keys[0];
        assert!(key.policy.publish.allows_topic("a/b"));
        assert!(!key.policy.publish.allows_topic("b"));
        assert_eq!(key.policy.subscribe, TopicAccess::All);
        assert!(!parsed.api_allowed("k"));
        assert!(!parsed.api_allowed("unknown"));
    }
}
