//! [`CustomRules`]: one immutable snapshot of every custom identity, permission and
//! blacklisted client id, indexed for CONNECT, PUBLISH and SUBSCRIBE decisions.

use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::HashMap;
use mqgate_topic::{Level, TopicFilter};
use subtle::ConstantTimeEq as _;

use super::records::{
    ConnectBlack, CustomIdentity, CustomPermission, Effect, IdentityKey, IdentityType,
    PermissionKey, PermitAction, SignMode,
};
use crate::verify_client_id_signature;

/// One permission, its topic parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The topic filter.
    pub filter: TopicFilter,
    /// What it covers.
    pub action: PermitAction,
    /// Allow or deny.
    pub effect: Effect,
}

/// Whether `rules` let a client publish to the topic name `topic`: some `ALLOW` rule covering
/// publishing matches it and no `DENY` rule covering publishing does. No rule, no right.
///
/// ```
/// use mqgate_auth::{publish_allowed, Effect, PermitAction, Rule};
/// use mqgate_topic::TopicFilter;
/// let rule = |f: &str, effect| Rule { filter: TopicFilter::parse(f).unwrap(), action: PermitAction::PubSub, effect };
/// let rules = [rule("a/#", Effect::Allow), rule("a/secret", Effect::Deny)];
/// assert!(publish_allowed(&rules, "a/open"));
/// assert!(!publish_allowed(&rules, "a/secret"));
/// assert!(!publish_allowed(&rules, "b"));
/// ```
pub fn publish_allowed(rules: &[Rule], topic: &str) -> bool {
    let mut allowed = false;
    for rule in rules {
        if rule.action.covers_publish() && rule.filter.matches(topic) {
            match rule.effect {
                Effect::Deny => return false,
                Effect::Allow => allowed = true,
            }
        }
    }
    allowed
}

/// Whether `rules` let a client subscribe to `filter`: some `ALLOW` rule covering
/// subscribing contains it entirely (every topic it can match), and no `DENY` rule covering
/// subscribing shares a single topic with it. So `ALLOW a/#` with `DENY a/secret` allows
/// `a/open` and `a/+/x` but refuses `a/#` and `a/+`, which could deliver `a/secret`.
pub fn subscribe_allowed(rules: &[Rule], filter: &TopicFilter) -> bool {
    let mut allowed = false;
    for rule in rules {
        if !rule.action.covers_subscribe() {
            continue;
        }
        match rule.effect {
            Effect::Deny if overlaps(&rule.filter, filter) => return false,
            Effect::Deny => {}
            Effect::Allow => allowed = allowed || rule.filter.contains(filter),
        }
    }
    allowed
}

/// Whether some topic name is matched by both filters. `#` matches its parent level and
/// everything below; a leading wildcard never matches a `$` topic.
pub(crate) fn overlaps(a: &TopicFilter, b: &TopicFilter) -> bool {
    let (mut ours, mut theirs) = (a.levels(), b.levels());
    loop {
        match (ours.next(), theirs.next()) {
            (None, None) => return true,
            (Some(Level::MultiWildcard), other) | (other, Some(Level::MultiWildcard)) => {
                return !matches!(other, Some(Level::System(_)))
            }
            (Some(Level::SingleWildcard), Some(Level::System(_)))
            | (Some(Level::System(_)), Some(Level::SingleWildcard)) => return false,
            (Some(Level::SingleWildcard), Some(_)) | (Some(_), Some(Level::SingleWildcard)) => {}
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

/// How a CONNECT's username and client id meet the custom identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityMatch<'a> {
    /// No custom identity has this username: one of the three other login modes decides.
    None,
    /// The identity that checks the password: the client's own `CLIENT` identity with this
    /// username, else the `USER` identity of this username.
    Found(&'a CustomIdentity),
    /// The username belongs only to `CLIENT` identities of other client ids.
    OtherClient,
}

/// Every custom identity, permission and blacklisted client id at one moment. Never changed
/// once built: a change builds a new snapshot (see [`LiveRules`](crate::LiveRules)).
#[derive(Debug, Default, Clone)]
pub struct CustomRules {
    users: HashMap<String, CustomIdentity>,
    clients: HashMap<String, CustomIdentity>,
    /// Usernames of `CLIENT` identities, with how many use each.
    client_usernames: HashMap<String, usize>,
    identities: BTreeMap<String, IdentityKey>,
    permissions: BTreeMap<String, CustomPermission>,
    /// The rules of each identity, by type and name.
    compiled: HashMap<(IdentityType, String), Arc<[Rule]>>,
    blacklist: BTreeMap<String, ConnectBlack>,
}

impl CustomRules {
    /// A snapshot of these records. A permission whose topic is not a valid filter (which the
    /// API never stores) is left out of the decisions, so it allows nothing.
    pub fn new(
        identities: impl IntoIterator<Item = CustomIdentity>,
        permissions: impl IntoIterator<Item = CustomPermission>,
        blacklist: impl IntoIterator<Item = ConnectBlack>,
    ) -> Self {
        let mut rules = CustomRules::default();
        for identity in identities {
            let key = identity.key();
            rules.identities.insert(key.to_store_key(), key.clone());
            match key.identity_type {
                IdentityType::User => {
                    rules.users.insert(key.name, identity);
                }
                IdentityType::Client => {
                    *rules
                        .client_usernames
                        .entry(identity.username.clone())
                        .or_default() += 1;
                    rules.clients.insert(key.name, identity);
                }
            }
        }
        let mut compiled: HashMap<(IdentityType, String), Vec<Rule>> = HashMap::new();
        for permission in permissions {
            if let Ok(filter) = TopicFilter::parse(&permission.topic) {
                compiled
                    .entry((permission.identity_type, permission.identity.clone()))
                    .or_default()
                    .push(Rule {
                        filter,
                        action: permission.permit_action,
                        effect: permission.effect,
                    });
            }
            rules
                .permissions
                .insert(permission.key().to_store_key(), permission);
        }
        rules.compiled = compiled
            .into_iter()
            .map(|(key, list)| (key, Arc::from(list)))
            .collect();
        rules.blacklist = blacklist
            .into_iter()
            .map(|black| (black.client_id.clone(), black))
            .collect();
        rules
    }

    /// Whether the snapshot holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && self.permissions.is_empty() && self.blacklist.is_empty()
    }

    /// Whether `client_id` is on the connect blacklist.
    pub fn is_blacklisted(&self, client_id: &str) -> bool {
        self.blacklist.contains_key(client_id)
    }

    /// Which identity, if any, a CONNECT with `username` from `client_id` logs in with.
    pub fn identity_for(&self, username: &str, client_id: &str) -> IdentityMatch<'_> {
        if let Some(own) = self
            .clients
            .get(client_id)
            .filter(|identity| identity.username == username)
        {
            return IdentityMatch::Found(own);
        }
        if let Some(user) = self.users.get(username) {
            return IdentityMatch::Found(user);
        }
        if self.client_usernames.contains_key(username) {
            return IdentityMatch::OtherClient;
        }
        IdentityMatch::None
    }

    /// The rules that apply to a client logged in as `username` from `client_id`: those of
    /// the `USER` identity `username` and those of the `CLIENT` identity `client_id`.
    pub fn rules_for(&self, username: &str, client_id: &str) -> Arc<[Rule]> {
        let user = self
            .compiled
            .get(&(IdentityType::User, username.to_owned()));
        let client = self
            .compiled
            .get(&(IdentityType::Client, client_id.to_owned()));
        match (user, client) {
            (Some(only), None) | (None, Some(only)) => Arc::clone(only),
            (Some(user), Some(client)) => user.iter().chain(client.iter()).cloned().collect(),
            (None, None) => Arc::from(Vec::new()),
        }
    }

    /// The identity of `key`, if any.
    pub fn identity(&self, key: &IdentityKey) -> Option<&CustomIdentity> {
        match key.identity_type {
            IdentityType::User => self.users.get(&key.name),
            IdentityType::Client => self.clients.get(&key.name),
        }
    }

    /// The permission of `key`, if any.
    pub fn permission(&self, key: &PermissionKey) -> Option<&CustomPermission> {
        self.permissions.get(&key.to_store_key())
    }

    /// The blacklist entry of `client_id`, if any.
    pub fn black(&self, client_id: &str) -> Option<&ConnectBlack> {
        self.blacklist.get(client_id)
    }

    /// Every identity, by store key (type, then name).
    pub fn identities(&self) -> impl Iterator<Item = (&str, &CustomIdentity)> {
        self.identities
            .iter()
            .filter_map(|(store_key, key)| Some((store_key.as_str(), self.identity(key)?)))
    }

    /// Every permission, by store key.
    pub fn permissions(&self) -> impl Iterator<Item = (&str, &CustomPermission)> {
        self.permissions.iter().map(|(k, p)| (k.as_str(), p))
    }

    /// Every blacklisted client id, sorted.
    pub fn blacklist(&self) -> impl Iterator<Item = (&str, &ConnectBlack)> {
        self.blacklist.iter().map(|(k, b)| (k.as_str(), b))
    }

    /// Counts: identities, permissions, blacklisted client ids.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.identities.len(),
            self.permissions.len(),
            self.blacklist.len(),
        )
    }
}

/// Whether `password` proves `identity` for `client_id`: the secret itself (`ORIGIN`) or
/// its signature of the client id (`SIGNED`), compared in constant time.
pub fn password_matches(identity: &CustomIdentity, client_id: &str, password: &[u8]) -> bool {
    match identity.sign_mode {
        SignMode::Origin => bool::from(identity.secret.as_bytes().ct_eq(password)),
        SignMode::Signed => verify_client_id_signature(&identity.secret, client_id, password),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(text: &str) -> TopicFilter {
        TopicFilter::parse(text).unwrap()
    }

    fn rule(filter: &str, action: PermitAction, effect: Effect) -> Rule {
        Rule {
            filter: f(filter),
            action,
            effect,
        }
    }

    #[test]
    fn overlap_table() {
        let table = [
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("a/+", "a/b", true),
            ("a/+", "+/b", true),
            ("a/+", "a/b/c", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "x/y", true),
            ("a/#", "b/#", false),
            ("+/+", "a", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("a/+/c", "a/b/+", true),
            ("a/+/c", "a/b/d", false),
            ("a/b", "a/b/#", true),
            ("a//b", "a/+/b", true),
        ];
        for (a, b, expected) in table {
            assert_eq!(overlaps(&f(a), &f(b)), expected, "{a} vs {b}");
            assert_eq!(overlaps(&f(b), &f(a)), expected, "{b} vs {a}");
        }
    }

    /// A filter of levels `a`, `b`, `+`, maybe `$s` first and `#` last.
    fn filter_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (
            any::<bool>(),
            proptest::collection::vec(prop_oneof!["a", "b", "\\+"], 0..4),
            any::<bool>(),
        )
            .prop_map(|(system, mut levels, hash)| {
                if system {
                    levels.insert(0, "$s".into());
                }
                if hash || levels.is_empty() {
                    levels.push("#".into());
                }
                levels.join("/")
            })
    }

    /// A topic `filter` matches: each `+` filled from `fill`, `#` replaced by `extra` levels.
    fn topic_of(filter: &str, fill: &[String], extra: usize) -> String {
        let mut fill = fill.iter().cycle();
        let mut levels = Vec::new();
        for level in filter.split('/') {
            match level {
                "+" => levels.extend(fill.next().cloned()),
                "#" => levels.extend(fill.by_ref().take(extra).cloned()),
                other => levels.push(other.to_owned()),
            }
        }
        if levels.is_empty() {
            levels.extend(fill.next().cloned());
        }
        levels.join("/")
    }

    proptest::proptest! {
        /// Whenever one topic is matched by both filters, they overlap: a DENY is never
        /// missed because the overlap test said no. The topic is made from the first filter,
        /// so that the second one often matches it too.
        #[test]
        fn a_shared_topic_means_overlap(
            a in filter_text(),
            b in filter_text(),
            fill in proptest::collection::vec(proptest::prop_oneof!["a", "b"], 1..4),
            extra in 0usize..3,
        ) {
            let topic = topic_of(&a, &fill, extra);
            let (a, b) = (f(&a), f(&b));
            proptest::prop_assert!(a.matches(&topic), "{a:?} should match {topic}");
            if b.matches(&topic) {
                proptest::prop_assert!(overlaps(&a, &b), "{a:?} and {b:?} both match {topic}");
            }
            proptest::prop_assert_eq!(overlaps(&a, &b), overlaps(&b, &a));
        }
    }

    #[test]
    fn deny_wins_and_nothing_means_no() {
        use Effect::{Allow, Deny};
        use PermitAction::{Pub, PubSub, Sub};
        let rules = [
            rule("a/#", PubSub, Allow),
            rule("a/secret", PubSub, Deny),
            rule("b/+", Pub, Allow),
            rule("c/#", Sub, Allow),
            rule("c/pub-only", Sub, Deny),
            rule("a/write-only", Sub, Deny),
        ];
        let publish = [
            ("a/x", true),
            ("a/secret", false),
            ("a/secret/below", true),
            ("a/write-only", true),
            ("b/x", true),
            ("b/x/y", false),
            ("c/x", false),
            ("d", false),
        ];
        for (topic, expected) in publish {
            assert_eq!(publish_allowed(&rules, topic), expected, "PUB {topic}");
        }
        let subscribe = [
            ("a/x", true),
            ("a/+/y", true),
            ("a/#", false),
            ("a/+", false),
            ("a/secret", false),
            ("a/write-only", false),
            ("b/x", false),
            ("c/#", false),
            ("c/x/#", true),
            ("#", false),
        ];
        for (filter, expected) in subscribe {
            assert_eq!(
                subscribe_allowed(&rules, &f(filter)),
                expected,
                "SUB {filter}"
            );
        }
        assert!(!publish_allowed(&[], "a"));
        assert!(!subscribe_allowed(&[], &f("a")));
    }

    fn identity(kind: IdentityType, username: &str, client: Option<&str>) -> CustomIdentity {
        CustomIdentity {
            identity_type: kind,
            username: username.into(),
            client_id: client.map(str::to_owned),
            secret: "s3cret".into(),
            sign_mode: SignMode::Origin,
            create_time_ms: 0,
            update_time_ms: 0,
        }
    }

    #[test]
    fn identity_lookup_prefers_the_clients_own() {
        let rules = CustomRules::new(
            [
                identity(IdentityType::User, "shared", None),
                identity(IdentityType::Client, "shared", Some("GID_a@@@1")),
                identity(IdentityType::Client, "bound", Some("GID_a@@@3")),
            ],
            [],
            [],
        );
        let found = |u, c| match rules.identity_for(u, c) {
            IdentityMatch::Found(identity) => Some(identity.identity_type),
            _ => None,
        };
        assert_eq!(found("shared", "GID_a@@@1"), Some(IdentityType::Client));
        assert_eq!(found("shared", "GID_a@@@2"), Some(IdentityType::User));
        assert_eq!(found("bound", "GID_a@@@3"), Some(IdentityType::Client));
        assert_eq!(
            rules.identity_for("bound", "GID_a@@@1"),
            IdentityMatch::OtherClient
        );
        assert_eq!(
            rules.identity_for("bound", "GID_a@@@2"),
            IdentityMatch::OtherClient
        );
        assert_eq!(
            rules.identity_for("Signature|AK|i", "GID_a@@@1"),
            IdentityMatch::None
        );
    }

    #[test]
    fn a_client_gets_its_user_and_client_rules() {
        let permission = |kind, identity: &str, topic: &str, effect| CustomPermission {
            identity_type: kind,
            identity: identity.into(),
            topic: topic.into(),
            permit_action: PermitAction::PubSub,
            effect,
            create_time_ms: 0,
            update_time_ms: 0,
        };
        let rules = CustomRules::new(
            [],
            [
                permission(IdentityType::User, "u", "a/#", Effect::Allow),
                permission(IdentityType::Client, "GID_a@@@1", "a/x", Effect::Deny),
                permission(IdentityType::User, "other", "b", Effect::Allow),
            ],
            [],
        );
        let one = rules.rules_for("u", "GID_a@@@1");
        assert_eq!(one.len(), 2);
        assert!(!publish_allowed(&one, "a/x"));
        assert!(publish_allowed(&one, "a/y"));
        let two = rules.rules_for("u", "GID_a@@@2");
        assert!(publish_allowed(&two, "a/x"));
        assert!(!publish_allowed(&two, "b"));
        assert!(rules.rules_for("nobody", "GID_a@@@9").is_empty());
    }

    #[test]
    fn passwords_by_sign_mode() {
        let mut id = identity(IdentityType::User, "u", None);
        assert!(password_matches(&id, "GID_a@@@1", b"s3cret"));
        assert!(!password_matches(&id, "GID_a@@@1", b"s3cre"));
        id.sign_mode = SignMode::Signed;
        let signed = crate::sign_client_id("s3cret", "GID_a@@@1");
        assert!(password_matches(&id, "GID_a@@@1", signed.as_bytes()));
        assert!(!password_matches(&id, "GID_a@@@2", signed.as_bytes()));
        assert!(!password_matches(&id, "GID_a@@@1", b"s3cret"));
    }
}
