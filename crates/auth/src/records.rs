//! The records a [`Registry`](crate::Registry) stores; serde-ready so a
//! durable store can persist them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A registered group (`GID_...`): clients whose client id names it may connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The group id, starting with `GID_`.
    pub group_id: String,
    /// When the group was created, ms since the epoch.
    pub create_time_ms: u64,
    /// When it last changed, ms since the epoch.
    pub update_time_ms: u64,
    /// Whether the group's name is scoped to its instance (the model
    /// service's "independent naming"); kept for the API, not used here.
    pub independent_naming: bool,
    /// Free-form key/value tags.
    pub tags: BTreeMap<String, String>,
}

impl GroupRecord {
    /// A group created at `now_ms`, with independent naming and no tags.
    ///
    /// ```
    /// let group = mqgate_auth::GroupRecord::new("GID_shop", 5);
    /// assert_eq!((group.create_time_ms, group.update_time_ms), (5, 5));
    /// ```
    pub fn new(group_id: impl Into<String>, now_ms: u64) -> Self {
        Self {
            group_id: group_id.into(),
            create_time_ms: now_ms,
            update_time_ms: now_ms,
            independent_naming: true,
            tags: BTreeMap::new(),
        }
    }
}

/// What a token lets its holder do on its resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenActions {
    /// `R`: subscribe.
    #[serde(rename = "R")]
    Read,
    /// `W`: publish.
    #[serde(rename = "W")]
    Write,
    /// `R,W`: both.
    #[serde(rename = "R,W")]
    ReadWrite,
}

impl TokenActions {
    /// Parses the API's spelling: `R`, `W`, `R,W` (or `W,R`).
    ///
    /// ```
    /// use mqgate_auth::TokenActions;
    /// assert_eq!(TokenActions::parse("W,R"), Some(TokenActions::ReadWrite));
    /// assert_eq!(TokenActions::parse("RW"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "R" => Some(Self::Read),
            "W" => Some(Self::Write),
            "R,W" | "W,R" => Some(Self::ReadWrite),
            _ => None,
        }
    }

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "R",
            Self::Write => "W",
            Self::ReadWrite => "R,W",
        }
    }

    /// Whether subscribing is allowed.
    pub fn can_read(self) -> bool {
        matches!(self, Self::Read | Self::ReadWrite)
    }

    /// Whether publishing is allowed.
    pub fn can_write(self) -> bool {
        matches!(self, Self::Write | Self::ReadWrite)
    }
}

/// An issued token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The token itself (what clients put in their password).
    pub token: String,
    /// The AccessKey that asked for it; clients must name the same one.
    pub access_key_id: String,
    /// The instance it was issued on.
    pub instance_id: String,
    /// Topic filters it covers (wildcards allowed).
    pub resources: Vec<String>,
    /// What it allows on them.
    pub actions: TokenActions,
    /// When it was issued, ms since the epoch.
    pub create_time_ms: u64,
    /// When it stops working, ms since the epoch.
    pub expire_time_ms: u64,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl TokenRecord {
    /// Whether a new connection may use it at `now_ms`: not revoked, not expired.
    pub fn is_valid(&self, now_ms: u64) -> bool {
        !self.revoked && now_ms < self.expire_time_ms
    }
}

/// A device's own credential ("one device, one secret"), bound to one client id.
/// Its `Debug` output leaves the secret out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCredential {
    /// The client id it belongs to.
    pub client_id: String,
    /// The instance it was registered on.
    pub instance_id: String,
    /// The public half, put in the username.
    pub device_access_key_id: String,
    /// The secret half, used to sign the client id.
    pub device_access_key_secret: String,
    /// When it was registered, ms since the epoch.
    pub create_time_ms: u64,
    /// When its secret last changed, ms since the epoch.
    pub update_time_ms: u64,
}

impl fmt::Debug for DeviceCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCredential")
            .field("client_id", &self.client_id)
            .field("instance_id", &self.instance_id)
            .field("device_access_key_id", &self.device_access_key_id)
            .field("device_access_key_secret", &"<redacted>")
            .field("create_time_ms", &self.create_time_ms)
            .field("update_time_ms", &self.update_time_ms)
            .finish()
    }
}
