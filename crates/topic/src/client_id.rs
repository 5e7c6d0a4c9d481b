//! Client ids: `{GroupId}@@@{DeviceId}` or a plain id, under the managed service's rules or
//! MQTT's.

use std::fmt;
use std::sync::Arc;

use thiserror::Error;

/// Separator between the group id and the device id.
pub const GROUP_SEPARATOR: &str = "@@@";
/// Prefix every group id starts with.
pub const GROUP_PREFIX: &str = "GID_";
/// Default longest client id, in bytes.
pub const DEFAULT_MAX_CLIENT_ID_LEN: usize = 64;
/// Default longest group id, in bytes.
pub const DEFAULT_MAX_GROUP_ID_LEN: usize = 64;

/// Why a client id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum ClientIdError {
    /// The id is empty (a broker that assigns ids to empty ones must do so before parsing).
    #[error("client id is empty")]
    Empty,
    /// The id is longer than [`ClientIdRules::max_len`].
    #[error("client id is {len} bytes, longer than {max}")]
    TooLong {
        /// Length of the id, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The id contains a byte outside letters, digits and `-_.:@`.
    #[error("client id contains {byte:#04x} at byte {index}, outside [A-Za-z0-9-_.:@]")]
    InvalidChar {
        /// The offending byte (the first byte of a non-ASCII character).
        byte: u8,
        /// Its offset in the id.
        index: usize,
    },
    /// The id contains a control character (C0, DEL or C1; U+0000 included), which even
    /// [`ClientIdSyntax::Mqtt`] refuses.
    #[error("client id contains a control character at byte {index}")]
    ControlChar {
        /// Its offset in the id.
        index: usize,
    },
    /// The id has no `@@@` but the rules require a group.
    #[error("client id has no `{GROUP_SEPARATOR}` but a group id is required")]
    MissingGroup,
    /// The group id does not start with `GID_`, or has nothing after it.
    #[error("group id must be `{GROUP_PREFIX}` followed by a name")]
    InvalidGroupPrefix,
    /// The group id is longer than [`ClientIdRules::max_group_len`].
    #[error("group id is {len} bytes, longer than {max}")]
    GroupTooLong {
        /// Length of the group id, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nothing follows `@@@`.
    #[error("device id is empty")]
    EmptyDevice,
}

/// Which ids are accepted at all, and how strictly the group form is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientIdSyntax {
    /// The managed service's rules: letters, digits and `-_.:@` only, and an id with `@@@`
    /// must have a valid group (`GID_` and a name, within
    /// [`max_group_len`](ClientIdRules::max_group_len)) and a device id.
    #[default]
    Service,
    /// MQTT 3.1.1's: any UTF-8 id (the codec has checked the encoding) without control
    /// characters. An id whose part before the first `@@@` is a valid group id has that
    /// group; any other id, `@@@` or not, is plain (no group), unless
    /// [`require_group`](ClientIdRules::require_group) is set.
    Mqtt,
}

/// The configurable limits a client id is checked against.
///
/// The defaults follow the model service: at most 64 bytes, letters, digits
/// and `-_.:@`, a group id starting with `GID_` of at most 64 bytes, and the
/// plain form (no group) accepted. [`ClientIdRules::mqtt`] accepts what any
/// MQTT client may send.
///
/// ```
/// use mqgate_topic::{ClientId, ClientIdRules};
///
/// let mqtt = ClientIdRules::mqtt();
/// let id = ClientId::parse_with("clean retained", &mqtt)?;
/// assert_eq!((id.group_id(), id.device_id()), (None, "clean retained"));
/// assert!(ClientId::parse_with("clean retained", &ClientIdRules::default()).is_err());
/// let grouped = ClientId::parse_with("GID_shop@@@ünïcödé", &mqtt)?;
/// assert_eq!(grouped.group_id(), Some("GID_shop"));
/// # Ok::<(), mqgate_topic::ClientIdError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIdRules {
    /// Longest whole id, in bytes.
    pub max_len: usize,
    /// Longest group id (prefix included), in bytes.
    pub max_group_len: usize,
    /// Refuse ids without `@@@`, as the model service does.
    pub require_group: bool,
    /// Which characters are allowed and how an id with `@@@` is read.
    pub syntax: ClientIdSyntax,
}

impl Default for ClientIdRules {
    fn default() -> Self {
        ClientIdRules {
            max_len: DEFAULT_MAX_CLIENT_ID_LEN,
            max_group_len: DEFAULT_MAX_GROUP_ID_LEN,
            require_group: false,
            syntax: ClientIdSyntax::Service,
        }
    }
}

impl ClientIdRules {
    /// The default limits under [`ClientIdSyntax::Mqtt`].
    pub fn mqtt() -> Self {
        ClientIdRules {
            syntax: ClientIdSyntax::Mqtt,
            ..ClientIdRules::default()
        }
    }

    /// Checks `id` without allocating; returns the byte offset of the `@@@`
    /// separator when the id has a group.
    pub fn check(&self, id: &str) -> Result<Option<usize>, ClientIdError> {
        if id.is_empty() {
            return Err(ClientIdError::Empty);
        }
        if id.len() > self.max_len {
            return Err(ClientIdError::TooLong {
                len: id.len(),
                max: self.max_len,
            });
        }
        match self.syntax {
            ClientIdSyntax::Service => {
                if let Some((index, &byte)) = id
                    .as_bytes()
                    .iter()
                    .enumerate()
                    .find(|(_, b)| !allowed(**b))
                {
                    return Err(ClientIdError::InvalidChar { byte, index });
                }
                self.check_group(id)
            }
            ClientIdSyntax::Mqtt => {
                if let Some((index, _)) = id.char_indices().find(|(_, c)| c.is_control()) {
                    return Err(ClientIdError::ControlChar { index });
                }
                match self.check_group(id) {
                    Err(_) if !self.require_group => Ok(None),
                    checked => checked,
                }
            }
        }
    }

    /// The group part of an id whose characters were checked.
    fn check_group(&self, id: &str) -> Result<Option<usize>, ClientIdError> {
        // A byte-window search: `str::split_once`'s searcher costs more to set
        // up than scanning 64 bytes, and P2P parsing runs this per message.
        let separator = GROUP_SEPARATOR.as_bytes();
        let split = id
            .as_bytes()
            .windows(separator.len())
            .position(|w| w == separator);
        let parts = split.and_then(|at| Some((id.get(..at)?, id.get(at + separator.len()..)?)));
        let Some((group, device)) = parts else {
            return if self.require_group {
                Err(ClientIdError::MissingGroup)
            } else {
                Ok(None)
            };
        };
        if group.len() <= GROUP_PREFIX.len() || !group.starts_with(GROUP_PREFIX) {
            return Err(ClientIdError::InvalidGroupPrefix);
        }
        if group.len() > self.max_group_len {
            return Err(ClientIdError::GroupTooLong {
                len: group.len(),
                max: self.max_group_len,
            });
        }
        if device.is_empty() {
            return Err(ClientIdError::EmptyDevice);
        }
        Ok(Some(group.len()))
    }
}

fn allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':' | b'@')
}

/// A validated client id, with its group and device parts.
///
/// ```
/// use mqgate_topic::ClientId;
///
/// let id = ClientId::parse("GID_shop@@@tag-0042")?;
/// assert_eq!(id.group_id(), Some("GID_shop"));
/// assert_eq!(id.device_id(), "tag-0042");
///
/// let plain = ClientId::parse("sensor-7")?;
/// assert_eq!(plain.group_id(), None);
/// assert_eq!(plain.device_id(), "sensor-7");
/// # Ok::<(), mqgate_topic::ClientIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    text: Arc<str>,
    /// Byte offset of `@@@`, when the id has a group.
    split: Option<usize>,
}

impl ClientId {
    /// Parses `id` under the default [`ClientIdRules`].
    pub fn parse(id: &str) -> Result<Self, ClientIdError> {
        Self::parse_with(id, &ClientIdRules::default())
    }

    /// Parses `id` under `rules`.
    pub fn parse_with(id: &str, rules: &ClientIdRules) -> Result<Self, ClientIdError> {
        let split = rules.check(id)?;
        Ok(ClientId {
            text: Arc::from(id),
            split,
        })
    }

    /// The whole id.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The group id (`GID_...`), when the id has the group form.
    pub fn group_id(&self) -> Option<&str> {
        self.split.and_then(|split| self.text.get(..split))
    }

    /// The device id: what follows `@@@`, or the whole id in the plain form.
    pub fn device_id(&self) -> &str {
        self.split
            .and_then(|split| self.text.get(split + GROUP_SEPARATOR.len()..))
            .unwrap_or(&self.text)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let long_group = format!("GID_{}@@@d", "g".repeat(57));
        type Parts = Result<(Option<&'static str>, &'static str), ClientIdError>;
        let cases: &[(&str, Parts)] = &[
            ("GID_shop@@@tag-0042", Ok((Some("GID_shop"), "tag-0042"))),
            ("GID_a@@@b@@@c", Ok((Some("GID_a"), "b@@@c"))),
            ("GID_a@@@x:y.z_w@v", Ok((Some("GID_a"), "x:y.z_w@v"))),
            ("sensor-7", Ok((None, "sensor-7"))),
            ("GID_only", Ok((None, "GID_only"))),
            ("", Err(ClientIdError::Empty)),
            ("GID_@@@d", Err(ClientIdError::InvalidGroupPrefix)),
            ("shop@@@d", Err(ClientIdError::InvalidGroupPrefix)),
            ("@@@d", Err(ClientIdError::InvalidGroupPrefix)),
            ("GID_a@@@", Err(ClientIdError::EmptyDevice)),
            (
                "a b",
                Err(ClientIdError::InvalidChar {
                    byte: b' ',
                    index: 1,
                }),
            ),
            (
                "a/b",
                Err(ClientIdError::InvalidChar {
                    byte: b'/',
                    index: 1,
                }),
            ),
            (
                "é",
                Err(ClientIdError::InvalidChar {
                    byte: 0xc3,
                    index: 0,
                }),
            ),
            (
                &long_group,
                Err(ClientIdError::TooLong { len: 65, max: 64 }),
            ),
        ];
        for (text, expected) in cases {
            let got = ClientId::parse(text);
            let got = got
                .as_ref()
                .map(|id| (id.group_id(), id.device_id()))
                .map_err(|e| *e);
            assert_eq!(got, expected.clone(), "{text:?}");
        }
    }

    #[test]
    fn configured_rules() {
        let strict = ClientIdRules {
            max_len: 200,
            max_group_len: 8,
            require_group: true,
            syntax: ClientIdSyntax::Service,
        };
        assert_eq!(
            ClientId::parse_with("plain", &strict),
            Err(ClientIdError::MissingGroup)
        );
        assert_eq!(
            ClientId::parse_with("GID_12345@@@d", &strict),
            Err(ClientIdError::GroupTooLong { len: 9, max: 8 })
        );
        let id = ClientId::parse_with(&format!("GID_1@@@{}", "d".repeat(150)), &strict).unwrap();
        assert_eq!(id.group_id(), Some("GID_1"));
        assert_eq!(id.device_id().len(), 150);
    }
    #[test]
    fn mqtt_rules_accept_any_utf8_without_control_characters() {
        let long = "ü".repeat(33);
        type Parts = Result<(Option<&'static str>, &'static str), ClientIdError>;
        let cases: &[(&str, Parts)] = &[
            ("clean retained", Ok((None, "clean retained"))),
            ("ünïcödé", Ok((None, "ünïcödé"))),
            ("a/b/c", Ok((None, "a/b/c"))),
            ("#+$", Ok((None, "#+$"))),
            ("GID_shop@@@tag 7", Ok((Some("GID_shop"), "tag 7"))),
            ("GID_ü@@@d/1", Ok((Some("GID_ü"), "d/1"))),
            // Not a valid group form: the whole id is plain.
            ("shop@@@d", Ok((None, "shop@@@d"))),
            ("GID_@@@d", Ok((None, "GID_@@@d"))),
            ("GID_a@@@", Ok((None, "GID_a@@@"))),
            ("", Err(ClientIdError::Empty)),
            ("a\u{0}b", Err(ClientIdError::ControlChar { index: 1 })),
            ("ü\nx", Err(ClientIdError::ControlChar { index: 2 })),
            ("x\u{7f}", Err(ClientIdError::ControlChar { index: 1 })),
            ("x\u{85}", Err(ClientIdError::ControlChar { index: 1 })),
            (&long, Err(ClientIdError::TooLong { len: 66, max: 64 })),
        ];
        let rules = ClientIdRules::mqtt();
        for (text, expected) in cases {
            let got = ClientId::parse_with(text, &rules);
            let got = got
                .as_ref()
                .map(|id| (id.group_id(), id.device_id()))
                .map_err(|e| *e);
            assert_eq!(got, expected.clone(), "{text:?}");
        }
        // Every id the service rules accept, MQTT's accept with the same parts.
        for text in [
            "GID_shop@@@tag-0042",
            "GID_a@@@b@@@c",
            "sensor-7",
            "GID_only",
        ] {
            assert_eq!(ClientId::parse_with(text, &rules), ClientId::parse(text));
        }
        let strict = ClientIdRules {
            require_group: true,
            ..ClientIdRules::mqtt()
        };
        assert_eq!(
            ClientId::parse_with("shop@@@d", &strict),
            Err(ClientIdError::InvalidGroupPrefix)
        );
        assert_eq!(
            ClientId::parse_with("plain id", &strict),
            Err(ClientIdError::MissingGroup)
        );
    }
}
