//! MQTT CONNECT authentication: username and password in, grants or a
//! CONNACK code out.

use std::fmt;

use std::sync::Arc;

use crate::custom::{password_matches, CustomIdentity, IdentityMatch, IdentityType, LiveRules};
use crate::{
    verify_client_id_signature, AccessPolicy, AuthFailure, AuthMode, FailureReason, Grants,
    Registry, TokenAccess, TokenPassword, Username,
};
use hashbrown::HashMap;

/// An AccessKey the broker accepts: the pair a backend signs with, and what
/// connections authenticated with it may do.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// The public id (`LTAI...`).
    pub access_key_id: String,
    /// The secret.
    pub secret: String,
    /// What signature-mode connections with this key may do, and the upper
    /// bound of the tokens it may issue. Everything by default.
    pub policy: AccessPolicy,
}

impl AccessKey {
    /// A key allowed everything.
    pub fn new(access_key_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret: secret.into(),
            policy: AccessPolicy::all(),
        }
    }
}

/// The secret stays out of logs.
impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<redacted>")
            .field("policy", &self.policy)
            .finish()
    }
}

/// How the broker authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// This broker's instance id; usernames must name it.
    pub instance_id: String,
    /// The accepted AccessKeys.
    pub access_keys: Vec<AccessKey>,
    /// Accept CONNECTs without a username, with every right and any client
    /// id. Off by default; meant for development and embedding.
    pub allow_anonymous: bool,
    /// What device-credential connections may do. Everything by default.
    pub device_credential_policy: AccessPolicy,
}

impl AuthConfig {
    /// A configuration for `instance_id` with no keys and anonymous off.
    pub fn new(instance_id: impl Into<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            access_keys: Vec::new(),
            allow_anonymous: false,
            device_credential_policy: AccessPolicy::all(),
        }
    }

    /// Adds an AccessKey.
    pub fn with_access_key(mut self, key: AccessKey) -> Self {
        self.access_keys.push(key);
        self
    }

    /// Turns anonymous connections on or off.
    pub fn with_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }
}

/// How a connection proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// No username; anonymous mode is on.
    Anonymous,
    /// `Signature|AccessKeyId|...`.
    Signature {
        /// The AccessKey that signed.
        access_key_id: String,
    },
    /// `Token|AccessKeyId|...`.
    Token {
        /// The AccessKey named in the username.
        access_key_id: String,
        /// The tokens presented, so the broker can re-check them later.
        tokens: Vec<String>,
    },
    /// `DeviceCredential|DeviceAccessKeyId|...`.
    DeviceCredential {
        /// The device's key id.
        device_access_key_id: String,
    },
    /// A custom identity's username (see [`custom`](crate::custom)).
    Custom {
        /// Whether it was the client's own `CLIENT` identity or a `USER` identity.
        identity_type: IdentityType,
        /// The username.
        username: String,
    },
}

/// An accepted CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// How it authenticated.
    pub method: AuthMethod,
    /// What it may publish and subscribe to.
    pub grants: Grants,
}

/// Decides CONNECTs, and issues tokens and device credentials
/// (see [`issue_token`](Self::issue_token) and
/// [`register_device_credential`](Self::register_device_credential)).
///
/// # How a CONNECT is decided
///
/// A client id has the form `{GroupId}@@@{DeviceId}`, the group id starting
/// with `GID_`. The group must be registered in the [`Registry`](crate::Registry).
///
/// The MQTT Username selects one of three modes; the instance id must be the
/// broker's own ([`AuthConfig::instance_id`](crate::AuthConfig::instance_id)):
///
/// | Username | Password |
/// |---|---|
/// | `Signature\|{AccessKeyId}\|{InstanceId}` | Base64(HMAC-SHA1(key = AccessKey secret, data = client id)) |
/// | `Token\|{AccessKeyId}\|{InstanceId}` | `R\|{token}`, `W\|{token}`, `RW\|{token}`, or several pairs in any order, each type at most once |
/// | `DeviceCredential\|{DeviceAccessKeyId}\|{InstanceId}` | Base64(HMAC-SHA1(key = device secret, data = client id)) |
///
/// A username may also name a custom identity, managed at run time; see
/// [`custom`](crate::custom) for how those log in and what they may then do.
///
/// Checks run in this order, and the first failure decides the CONNACK code:
///
/// | Check | Failure | Code |
/// |---|---|---|
/// | (the custom rules could not be read) | `Registry` | 3 |
/// | client id not on the connect blacklist | `ConnectBlacklisted` | 5 |
/// | username present (else anonymous mode must be on) | `AnonymousRefused` | 5 |
/// | a custom identity's username: its checks (see [`custom`](crate::custom)), then the group | `CustomIdentityOtherClient`, `MissingPassword`, `BadSignature`, ... | 4, 2, 5 |
/// | username parses | `BadUsername` | 4 |
/// | instance id is ours | `WrongInstance` | 4 |
/// | password present | `MissingPassword` | 4 |
/// | AccessKeyId configured (signature, token) | `UnknownAccessKey` | 4 |
/// | device credential exists for this client id, key id and instance | `UnknownDeviceCredential` | 4 |
/// | signature matches | `BadSignature` | 4 |
/// | token password parses | `BadPassword` | 4 |
/// | every token exists, issued by that AccessKey on this instance | `UnknownToken` | 4 |
/// | every token neither expired nor revoked | `TokenNotValid` | 5 |
/// | every token allows what it was offered for (`R` needs read, `W` write, `RW` both) | `TokenLacksAction` | 5 |
/// | client id is `GID_{group}@@@{device}` | `BadClientId` | 2 |
/// | group registered | `GroupNotRegistered` | 5 |
/// | (registry failed at any step) | `Registry` | 3 |
///
/// The rule of thumb: credentials that are malformed or do not verify give 4
/// ("bad user name or password"); credentials that verify, or are absent,
/// but are not enough give 5 ("not authorised"). A malformed client id gives
/// 2 ("identifier rejected"), which MQTT 3.1.1 defines for exactly that. The
/// group is checked after the credentials so that an unauthenticated client
/// cannot probe which groups exist.
///
/// Anonymous mode (off by default) accepts a CONNECT without a username, with
/// any client id, and grants everything. A CONNECT that does send a username
/// is checked as above even in anonymous mode.
///
/// Expiry and revocation stop *new* connections; a connection that is
/// already up keeps its [`Grants`](crate::Grants). [`AuthMethod::Token`](crate::AuthMethod::Token)
/// lists the tokens so the broker can re-check them if it wants to.
#[derive(Debug)]
pub struct Authenticator<R> {
    pub(crate) config: AuthConfig,
    keys: HashMap<String, AccessKey>,
    pub(crate) registry: R,
    pub(crate) custom: Arc<LiveRules>,
}

impl<R: Registry> Authenticator<R> {
    /// An authenticator over `registry`. Of two keys with the same id, the
    /// last one counts. The custom rules are read from the registry now; if that fails,
    /// they are read again at the next CONNECT or change, which the registry's error
    /// refuses until then.
    pub fn new(config: AuthConfig, registry: R) -> Self {
        let keys = config
            .access_keys
            .iter()
            .map(|key| (key.access_key_id.clone(), key.clone()))
            .collect();
        let auth = Self {
            config,
            keys,
            registry,
            custom: Arc::new(LiveRules::default()),
        };
        // A failure leaves the rules unloaded, and they are read again when next needed.
        let _ = auth.current_custom_rules();
        auth
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The registry.
    pub fn registry(&self) -> &R {
        &self.registry
    }

    /// The AccessKey `access_key_id`, if configured.
    pub fn access_key(&self, access_key_id: &str) -> Option<&AccessKey> {
        self.keys.get(access_key_id)
    }

    /// The secret of `access_key_id`: the lookup
    /// [`openapi::verify_request`](crate::openapi::verify_request) needs.
    pub fn access_key_secret(&self, access_key_id: &str) -> Option<String> {
        self.access_key(access_key_id).map(|key| key.secret.clone())
    }

    /// Decides a CONNECT from its client id, username and password, at `now_ms`.
    pub fn authenticate(
        &self,
        client_id: &str,
        username: Option<&str>,
        password: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<Authenticated, AuthFailure> {
        let custom = self.current_custom_rules()?;
        if custom.is_blacklisted(client_id) {
            return Err(FailureReason::ConnectBlacklisted.into());
        }
        let Some(username) = username else {
            if self.config.allow_anonymous {
                return Ok(Authenticated {
                    method: AuthMethod::Anonymous,
                    grants: Grants::new(client_id, AccessPolicy::all()),
                });
            }
            return Err(FailureReason::AnonymousRefused.into());
        };
        match custom.identity_for(username, client_id) {
            IdentityMatch::Found(identity) => {
                return self.custom_login(identity, client_id, password);
            }
            IdentityMatch::OtherClient => {
                return Err(FailureReason::CustomIdentityOtherClient.into());
            }
            IdentityMatch::None => {}
        }
        let username = Username::parse(username).map_err(FailureReason::BadUsername)?;
        if username.instance_id != self.config.instance_id {
            return Err(FailureReason::WrongInstance(username.instance_id.to_owned()).into());
        }
        let password = password.ok_or(FailureReason::MissingPassword)?;
        let (method, policy) = match username.mode {
            AuthMode::Signature => {
                let key = self.known_key(username.access_key_id)?;
                if !verify_client_id_signature(&key.secret, client_id, password) {
                    return Err(FailureReason::BadSignature.into());
                }
                let method = AuthMethod::Signature {
                    access_key_id: key.access_key_id.clone(),
                };
                (method, key.policy.clone())
            }
            AuthMode::DeviceCredential => {
                self.check_device_credential(client_id, username.access_key_id, password)?
            }
            AuthMode::Token => self.check_tokens(username.access_key_id, password, now_ms)?,
        };
        self.require_registered_group(client_id)?;
        Ok(Authenticated {
            method,
            grants: Grants::new(client_id, policy),
        })
    }

    fn custom_login(
        &self,
        identity: &CustomIdentity,
        client_id: &str,
        password: Option<&[u8]>,
    ) -> Result<Authenticated, AuthFailure> {
        let password = password.ok_or(FailureReason::MissingPassword)?;
        if !password_matches(identity, client_id, password) {
            return Err(FailureReason::BadSignature.into());
        }
        self.require_registered_group(client_id)?;
        Ok(Authenticated {
            method: AuthMethod::Custom {
                identity_type: identity.identity_type,
                username: identity.username.clone(),
            },
            grants: Grants::custom(client_id, &identity.username, Arc::clone(&self.custom)),
        })
    }

    fn known_key(&self, access_key_id: &str) -> Result<&AccessKey, FailureReason> {
        self.access_key(access_key_id)
            .ok_or_else(|| FailureReason::UnknownAccessKey(access_key_id.to_owned()))
    }

    fn check_device_credential(
        &self,
        client_id: &str,
        device_access_key_id: &str,
        password: &[u8],
    ) -> Result<(AuthMethod, AccessPolicy), AuthFailure> {
        let credential = self
            .registry
            .device_credential(client_id)?
            .filter(|credential| {
                credential.device_access_key_id == device_access_key_id
                    && credential.instance_id == self.config.instance_id
            })
            .ok_or(FailureReason::UnknownDeviceCredential)?;
        if !verify_client_id_signature(&credential.device_access_key_secret, client_id, password) {
            return Err(FailureReason::BadSignature.into());
        }
        let method = AuthMethod::DeviceCredential {
            device_access_key_id: credential.device_access_key_id,
        };
        Ok((method, self.config.device_credential_policy.clone()))
    }

    fn check_tokens(
        &self,
        access_key_id: &str,
        password: &[u8],
        now_ms: u64,
    ) -> Result<(AuthMethod, AccessPolicy), AuthFailure> {
        let key = self.known_key(access_key_id)?;
        let offered = TokenPassword::parse(password).map_err(FailureReason::BadPassword)?;
        let mut access = TokenAccess::default();
        let mut tokens = Vec::new();
        for (token, offered_read, offered_write) in offered.tokens() {
            let record = self
                .registry
                .token(token)?
                .filter(|record| {
                    record.access_key_id == key.access_key_id
                        && record.instance_id == self.config.instance_id
                })
                .ok_or(FailureReason::UnknownToken)?;
            if !record.is_valid(now_ms) {
                return Err(FailureReason::TokenNotValid.into());
            }
            if (offered_read && !record.actions.can_read())
                || (offered_write && !record.actions.can_write())
            {
                return Err(FailureReason::TokenLacksAction.into());
            }
            access.add(&record, offered_read, offered_write);
            tokens.push(record.token);
        }
        let method = AuthMethod::Token {
            access_key_id: key.access_key_id.clone(),
            tokens,
        };
        Ok((method, access.into_policy()))
    }
}
