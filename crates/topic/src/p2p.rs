//! P2P addresses: `{parent}/p2p/{clientId}`, and the
//! RocketMQ form, a parent topic plus the subtopic `/p2p/{clientId}`.

use thiserror::Error;

use crate::{ClientIdError, ClientIdRules};

/// The level that marks a P2P address when it is the second level.
pub const P2P_LEVEL: &str = "p2p";

/// Why a topic that looks like a P2P address is not a usable one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum P2pError {
    /// `{parent}/p2p` or `{parent}/p2p/`: no target client id.
    #[error("P2P topic has no target client id")]
    MissingTarget,
    /// The parent topic (first level) is empty: `/p2p/{clientId}` is a subtopic, not a topic.
    #[error("P2P topic has an empty parent topic")]
    EmptyParent,
    /// Levels follow the client id; the model service puts the client id last.
    #[error("P2P topic has levels after the target client id")]
    TrailingLevels,
    /// The target is not a valid client id.
    #[error("P2P target is not a valid client id: {0}")]
    InvalidTarget(#[source] ClientIdError),
    /// A RocketMQ subtopic does not have the form `/p2p/{clientId}`.
    #[error("subtopic is not of the form `/p2p/{{clientId}}`")]
    NotP2pSubtopic,
}

/// A parsed P2P address: a message for exactly one client, borrowed from the topic.
///
/// ```
/// use mqgate_topic::{P2pAddress, P2pError};
///
/// let addr = P2pAddress::parse("chat/p2p/GID_app@@@phone-1")?.unwrap();
/// assert_eq!(addr.parent, "chat");
/// assert_eq!(addr.target_client_id, "GID_app@@@phone-1");
/// assert_eq!(addr.to_topic(), "chat/p2p/GID_app@@@phone-1");
///
/// assert_eq!(P2pAddress::parse("chat/room/1")?, None);
/// assert_eq!(P2pAddress::parse("chat/p2p"), Err(P2pError::MissingTarget));
/// # Ok::<(), P2pError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct P2pAddress<'a> {
    /// The first-level (parent) topic.
    pub parent: &'a str,
    /// The client id the message is for.
    pub target_client_id: &'a str,
}

impl<'a> P2pAddress<'a> {
    /// Parses `topic`, checking the target under the default [`ClientIdRules`].
    ///
    /// `Ok(None)` when the second level is not `p2p` (an ordinary topic); that
    /// answer costs one scan for the first `/` and a few byte comparisons.
    pub fn parse(topic: &'a str) -> Result<Option<Self>, P2pError> {
        Self::parse_with(topic, &ClientIdRules::default())
    }

    /// Parses `topic`, checking the target under `rules`.
    pub fn parse_with(topic: &'a str, rules: &ClientIdRules) -> Result<Option<Self>, P2pError> {
        let Some((parent, rest)) = topic.split_once('/') else {
            return Ok(None);
        };
        let Some(after) = rest.strip_prefix(P2P_LEVEL) else {
            return Ok(None);
        };
        let target = match after.strip_prefix('/') {
            Some(target) => target,
            None if after.is_empty() => return Err(P2pError::MissingTarget),
            // `p2pX/...`: the second level only starts with `p2p`.
            None => return Ok(None),
        };
        if parent.is_empty() {
            return Err(P2pError::EmptyParent);
        }
        Ok(Some(P2pAddress {
            parent,
            target_client_id: check_target(target, rules)?,
        }))
    }

    /// The topic of this address: `{parent}/p2p/{target}`.
    pub fn to_topic(&self) -> String {
        format_p2p(self.parent, self.target_client_id)
    }
}

fn check_target<'a>(target: &'a str, rules: &ClientIdRules) -> Result<&'a str, P2pError> {
    if target.is_empty() {
        return Err(P2pError::MissingTarget);
    }
    if target.contains('/') {
        return Err(P2pError::TrailingLevels);
    }
    rules.check(target).map_err(P2pError::InvalidTarget)?;
    Ok(target)
}

/// Formats the topic that addresses `client_id` under `parent`:
/// `{parent}/p2p/{client_id}`.
pub fn format_p2p(parent: &str, client_id: &str) -> String {
    let mut topic = String::with_capacity(parent.len() + P2P_LEVEL.len() + client_id.len() + 2);
    topic.push_str(parent);
    topic.push('/');
    topic.push_str(P2P_LEVEL);
    topic.push('/');
    topic.push_str(client_id);
    topic
}

/// Parses the RocketMQ form of a P2P address, the `mqttSecondTopic` value
/// `/p2p/{clientId}`, into the client id (checked under the default rules).
///
/// ```
/// use mqgate_topic::{parse_p2p_subtopic, p2p_subtopic};
/// assert_eq!(parse_p2p_subtopic("/p2p/GID_a@@@d1"), Ok("GID_a@@@d1"));
/// assert_eq!(p2p_subtopic("GID_a@@@d1"), "/p2p/GID_a@@@d1");
/// ```
pub fn parse_p2p_subtopic(subtopic: &str) -> Result<&str, P2pError> {
    let target = subtopic
        .strip_prefix('/')
        .and_then(|s| s.strip_prefix(P2P_LEVEL))
        .ok_or(P2pError::NotP2pSubtopic)?;
    match target.strip_prefix('/') {
        Some(target) => check_target(target, &ClientIdRules::default()),
        None if target.is_empty() => Err(P2pError::MissingTarget),
        None => Err(P2pError::NotP2pSubtopic),
    }
}

/// Formats the RocketMQ subtopic that addresses `client_id`: `/p2p/{client_id}`.
pub fn p2p_subtopic(client_id: &str) -> String {
    format_p2p("", client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        type Expected = Result<Option<(&'static str, &'static str)>, P2pError>;
        let cases: &[(&str, Expected)] = &[
            ("chat/p2p/GID_a@@@d", Ok(Some(("chat", "GID_a@@@d")))),
            ("chat/p2p/plain-id", Ok(Some(("chat", "plain-id")))),
            ("chat", Ok(None)),
            ("chat/room", Ok(None)),
            ("chat/p2px/d", Ok(None)),
            ("chat/p2", Ok(None)),
            ("chat/P2P/d", Ok(None)),
            ("chat/x/p2p/d", Ok(None)),
            ("p2p/d", Ok(None)),
            ("chat/p2p", Err(P2pError::MissingTarget)),
            ("chat/p2p/", Err(P2pError::MissingTarget)),
            ("chat/p2p/d/more", Err(P2pError::TrailingLevels)),
            ("chat/p2p/d/", Err(P2pError::TrailingLevels)),
            ("/p2p/d", Err(P2pError::EmptyParent)),
            (
                "chat/p2p/bad id",
                Err(P2pError::InvalidTarget(ClientIdError::InvalidChar {
                    byte: b' ',
                    index: 3,
                })),
            ),
            (
                "chat/p2p/GID_@@@d",
                Err(P2pError::InvalidTarget(ClientIdError::InvalidGroupPrefix)),
            ),
        ];
        for (topic, expected) in cases {
            let got = P2pAddress::parse(topic).map(|a| a.map(|a| (a.parent, a.target_client_id)));
            assert_eq!(got, *expected, "{topic:?}");
        }
    }

    #[test]
    fn format_is_the_inverse_of_parse() {
        for (parent, id) in [("chat", "GID_a@@@d"), ("x", "y"), ("$sys", "c:1")] {
            let topic = format_p2p(parent, id);
            let addr = P2pAddress::parse(&topic).unwrap().unwrap();
            assert_eq!((addr.parent, addr.target_client_id), (parent, id));
            assert_eq!(addr.to_topic(), topic);
            assert_eq!(parse_p2p_subtopic(&p2p_subtopic(id)), Ok(id));
        }
    }

    #[test]
    fn subtopic_table() {
        let cases: &[(&str, Result<&str, P2pError>)] = &[
            ("/p2p/GID_a@@@d", Ok("GID_a@@@d")),
            ("/p2p/", Err(P2pError::MissingTarget)),
            ("/p2p", Err(P2pError::MissingTarget)),
            ("/p2p/a/b", Err(P2pError::TrailingLevels)),
            ("p2p/a", Err(P2pError::NotP2pSubtopic)),
            ("/p2px/a", Err(P2pError::NotP2pSubtopic)),
            ("/room/a", Err(P2pError::NotP2pSubtopic)),
            ("", Err(P2pError::NotP2pSubtopic)),
        ];
        for (subtopic, expected) in cases {
            assert_eq!(parse_p2p_subtopic(subtopic), *expected, "{subtopic:?}");
        }
    }
    #[test]
    fn mqtt_rules_address_any_id_without_a_slash() {
        let rules = ClientIdRules::mqtt();
        for id in ["clean retained", "ünïcödé", "GID_a@@@ü 1", "shop@@@d"] {
            let topic = format_p2p("chat", id);
            let addr = P2pAddress::parse_with(&topic, &rules).unwrap().unwrap();
            assert_eq!((addr.parent, addr.target_client_id), ("chat", id));
            assert!(
                P2pAddress::parse(&topic).is_err(),
                "{id:?} under service rules"
            );
        }
        // A `/` in the id is a level separator in the topic: such an id has no P2P address.
        assert_eq!(
            P2pAddress::parse_with("chat/p2p/a/b", &rules),
            Err(P2pError::TrailingLevels)
        );
        assert_eq!(
            P2pAddress::parse_with("chat/p2p/a\u{1}", &rules),
            Err(P2pError::InvalidTarget(ClientIdError::ControlChar {
                index: 1
            }))
        );
    }
}
