//! The custom authentication records: identities, permissions and the connect blacklist,
//! with the API's spellings of their enumerations. Serde-ready, so a durable store keeps them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Defines an enumeration spelled in upper case by the API, with `parse` and `as_str`.
macro_rules! api_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Parses the API's spelling (upper case, exactly).
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The API's spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Every spelling, joined for error messages.
            pub(crate) fn choices() -> &'static str {
                concat!($($text, " "),+)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

api_enum! {
    /// Whom an identity or a permission is about.
    ///
    /// ```
    /// use mqgate_auth::IdentityType;
    /// assert_eq!(IdentityType::parse("CLIENT"), Some(IdentityType::Client));
    /// assert_eq!(IdentityType::parse("client"), None);
    /// ```
    IdentityType {
        /// `USER`: any client presenting the username.
        User = "USER",
        /// `CLIENT`: one client id.
        Client = "CLIENT",
    }
}

api_enum! {
    /// How the MQTT password of a custom identity is checked.
    SignMode {
        /// `ORIGIN`: the password is the secret itself.
        Origin = "ORIGIN",
        /// `SIGNED`: the password is Base64(HMAC-SHA1(key = the secret, data = the client id)).
        Signed = "SIGNED",
    }
}

api_enum! {
    /// What a permission is about.
    PermitAction {
        /// `PUB`: publishing.
        Pub = "PUB",
        /// `SUB`: subscribing.
        Sub = "SUB",
        /// `PUB_SUB`: both.
        PubSub = "PUB_SUB",
    }
}

api_enum! {
    /// Whether a permission allows or denies.
    Effect {
        /// `ALLOW`.
        Allow = "ALLOW",
        /// `DENY`: wins over every `ALLOW`.
        Deny = "DENY",
    }
}

impl PermitAction {
    /// Whether it covers publishing.
    pub fn covers_publish(self) -> bool {
        matches!(self, Self::Pub | Self::PubSub)
    }

    /// Whether it covers subscribing.
    pub fn covers_subscribe(self) -> bool {
        matches!(self, Self::Sub | Self::PubSub)
    }
}

/// A custom identity: a username and secret a client logs in with.
///
/// A `USER` identity is keyed by its username; a `CLIENT` identity by its client id, and
/// only that client may use it. Its `Debug` output leaves the secret out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomIdentity {
    /// `USER` or `CLIENT`.
    pub identity_type: IdentityType,
    /// The MQTT username.
    pub username: String,
    /// The client id a `CLIENT` identity is bound to; `None` for `USER`.
    pub client_id: Option<String>,
    /// The secret.
    pub secret: String,
    /// How the password is checked against the secret.
    pub sign_mode: SignMode,
    /// When it was added, ms since the epoch.
    pub create_time_ms: u64,
    /// When it last changed, ms since the epoch.
    pub update_time_ms: u64,
}

impl CustomIdentity {
    /// Its key: the type and the username (`USER`) or the client id (`CLIENT`).
    pub fn key(&self) -> IdentityKey {
        let name = match (self.identity_type, &self.client_id) {
            (IdentityType::Client, Some(client_id)) => client_id.clone(),
            _ => self.username.clone(),
        };
        IdentityKey {
            identity_type: self.identity_type,
            name,
        }
    }
}

impl fmt::Debug for CustomIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomIdentity")
            .field("identity_type", &self.identity_type)
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .field("sign_mode", &self.sign_mode)
            .finish_non_exhaustive()
    }
}

/// What names one identity: its type, and the username (`USER`) or client id (`CLIENT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey {
    /// `USER` or `CLIENT`.
    pub identity_type: IdentityType,
    /// The username or the client id.
    pub name: String,
}

impl IdentityKey {
    /// The key as one string, for a store: the type, `:`, the name. Distinct keys give
    /// distinct strings, and they sort by type, then name.
    ///
    /// ```
    /// use mqgate_auth::{IdentityKey, IdentityType};
    /// let key = IdentityKey { identity_type: IdentityType::User, name: "alice".into() };
    /// assert_eq!(key.to_store_key(), "USER:alice");
    /// ```
    pub fn to_store_key(&self) -> String {
        format!("{}:{}", self.identity_type, self.name)
    }
}

/// A topic permission of one identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomPermission {
    /// Whom it is about: a `USER` username or a `CLIENT` client id.
    pub identity_type: IdentityType,
    /// The username or client id.
    pub identity: String,
    /// A topic filter; wildcards allowed.
    pub topic: String,
    /// Publishing, subscribing or both.
    pub permit_action: PermitAction,
    /// Allow or deny.
    pub effect: Effect,
    /// When it was added, ms since the epoch.
    pub create_time_ms: u64,
    /// When it last changed, ms since the epoch.
    pub update_time_ms: u64,
}

impl CustomPermission {
    /// Its key: the identity and the topic (one permission per identity and topic).
    pub fn key(&self) -> PermissionKey {
        PermissionKey {
            identity_type: self.identity_type,
            identity: self.identity.clone(),
            topic: self.topic.clone(),
        }
    }
}

/// What names one permission: the identity's type and name, and the topic filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermissionKey {
    /// `USER` or `CLIENT`.
    pub identity_type: IdentityType,
    /// The username or client id.
    pub identity: String,
    /// The topic filter, as given.
    pub topic: String,
}

impl PermissionKey {
    /// The key as one string, for a store: the type, the identity's length in bytes, the
    /// identity, then the topic, so no identity or topic text can make two keys collide.
    ///
    /// ```
    /// use mqgate_auth::{IdentityType, PermissionKey};
    /// let key = PermissionKey { identity_type: IdentityType::User, identity: "bob".into(), topic: "a/#".into() };
    /// assert_eq!(key.to_store_key(), "USER:3:boba/#");
    /// ```
    pub fn to_store_key(&self) -> String {
        format!(
            "{}:{}:{}{}",
            self.identity_type,
            self.identity.len(),
            self.identity,
            self.topic
        )
    }
}

/// A client id on the connect blacklist: refused at CONNECT, closed if online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectBlack {
    /// The client id.
    pub client_id: String,
    /// When it was added, ms since the epoch.
    pub create_time_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for t in [IdentityType::User, IdentityType::Client] {
            assert_eq!(IdentityType::parse(t.as_str()), Some(t));
        }
        for a in [PermitAction::Pub, PermitAction::Sub, PermitAction::PubSub] {
            assert_eq!(PermitAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(Effect::parse("DENY"), Some(Effect::Deny));
        assert_eq!(SignMode::parse("SIGNED"), Some(SignMode::Signed));
        assert_eq!(PermitAction::parse("PUBSUB"), None);
        assert_eq!(Effect::parse("allow"), None);
        assert_eq!(SignMode::choices(), "ORIGIN SIGNED ");
    }

    #[test]
    fn store_keys_do_not_collide() {
        let key = |identity: &str, topic: &str| PermissionKey {
            identity_type: IdentityType::User,
            identity: identity.into(),
            topic: topic.into(),
        };
        assert_ne!(key("ab", "c").to_store_key(), key("a", "bc").to_store_key());
        let client = IdentityKey {
            identity_type: IdentityType::Client,
            name: "x".into(),
        };
        let user = IdentityKey {
            identity_type: IdentityType::User,
            name: "x".into(),
        };
        assert_ne!(client.to_store_key(), user.to_store_key());
    }

    #[test]
    fn a_client_identity_is_keyed_by_its_client_id() {
        let mut identity = CustomIdentity {
            identity_type: IdentityType::Client,
            username: "u".into(),
            client_id: Some("GID_a@@@1".into()),
            secret: "very-secret".into(),
            sign_mode: SignMode::Origin,
            create_time_ms: 0,
            update_time_ms: 0,
        };
        assert_eq!(identity.key().name, "GID_a@@@1");
        assert!(!format!("{identity:?}").contains("very-secret"));
        identity.identity_type = IdentityType::User;
        assert_eq!(identity.key().name, "u");
    }
}
