//! What an authenticated connection may publish and subscribe to.

use std::sync::Arc;

use mqgate_topic::{SubscriptionFilter, TopicError, TopicFilter, TopicName, P2P_LEVEL};

use crate::custom::{publish_allowed, subscribe_allowed, CustomGrant, LiveRules};

/// The topics one direction (publish or subscribe) allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicAccess {
    /// Every topic, `$`-topics included.
    All,
    /// Only topics matched by one of these filters; none if empty.
    Only(Vec<TopicFilter>),
}

impl Default for TopicAccess {
    /// Everything, as an AccessKey allows unless configured otherwise.
    fn default() -> Self {
        Self::All
    }
}

impl TopicAccess {
    /// No topic at all.
    pub fn none() -> Self {
        Self::Only(Vec::new())
    }

    /// Topics matched by any of `filters`, each validated.
    ///
    /// ```
    /// use mqgate_auth::TopicAccess;
    /// let access = TopicAccess::filters(["shop/+/status", "shop/orders/#"]).unwrap();
    /// assert!(access.allows_topic("shop/a1/status"));
    /// assert!(!access.allows_topic("shop/a1/cmd"));
    /// assert!(TopicAccess::filters(["bad/#/x"]).is_err());
    /// ```
    pub fn filters<I, S>(filters: I) -> Result<Self, TopicError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        filters
            .into_iter()
            .map(|filter| TopicFilter::parse(filter.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::Only)
    }

    /// Whether the topic name `topic` is allowed.
    pub fn allows_topic(&self, topic: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(filters) => filters.iter().any(|filter| filter.matches(topic)),
        }
    }

    /// Whether every topic `filter` can match is allowed: some allowed
    /// filter must contain it entirely.
    pub fn allows_filter(&self, filter: &TopicFilter) -> bool {
        match self {
            Self::All => true,
            Self::Only(filters) => filters.iter().any(|allowed| allowed.contains(filter)),
        }
    }

    /// Everything either allows.
    pub fn union(self, other: Self) -> Self {
        match (self, other) {
            (Self::All, _) | (_, Self::All) => Self::All,
            (Self::Only(mut ours), Self::Only(theirs)) => {
                ours.extend(theirs);
                Self::Only(ours)
            }
        }
    }
}

/// What an AccessKey (or a device credential) allows, per direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Topics it may publish to.
    pub publish: TopicAccess,
    /// Topics it may subscribe to.
    pub subscribe: TopicAccess,
}

impl AccessPolicy {
    /// Everything both ways (the default).
    pub fn all() -> Self {
        Self::default()
    }

    /// Nothing either way.
    pub fn none() -> Self {
        Self {
            publish: TopicAccess::none(),
            subscribe: TopicAccess::none(),
        }
    }
}

/// The publish and subscribe rights of one connection: a policy fixed when it
/// authenticated, or, for a custom identity, the custom permissions current at each check
/// (see [`custom`](crate::custom)).
///
/// # How grants follow from the login, and P2P protection
///
/// A connection's [`Grants`](crate::Grants) follow from how it authenticated:
/// an AccessKey or device credential gives its configured policy (everything
/// by default); tokens give exactly their resources, `R` tokens for
/// subscribing and `W` tokens for publishing; anonymous gives everything.
///
/// A topic may be published if a granted filter matches it. A subscription
/// filter (plain, or the filter inside `$share/{group}/{filter}`) may be
/// subscribed only if one granted filter contains it entirely, that is if
/// every topic it can match is granted: `a/#` grants `a/+/b` but `a/+` does
/// not grant `a/#`.
///
/// A P2P address is `{parent}/p2p/{clientId}`. Publishing to one is how a
/// client sends P2P messages, so only the policy decides. Subscribing is
/// refused, whatever the policy, for any filter whose second level is
/// literally `p2p` and whose remaining levels are anything other than exactly
/// the subscriber's own client id: `a/p2p/{other}`, `a/p2p/+`, `a/p2p/#`,
/// `+/p2p/{other}` are all refused. A client's own address is allowed (it
/// receives its P2P messages anyway).
///
/// That leaves wildcard filters above the `p2p` level, such as `a/#` or
/// `a/+/{other}`. They are allowed, and **the broker's router must never
/// deliver a P2P topic through subscription matching**: a message published
/// to `{parent}/p2p/{target}` goes to `{target}` only, by direct lookup, and
/// is not matched against the subscription trie. With that contract no
/// filter can receive another client's P2P messages.
///
/// ```
/// use mqgate_auth::{AccessPolicy, Grants, TopicAccess};
/// let grants = Grants::new(
///     "GID_app@@@phone-1",
///     AccessPolicy { publish: TopicAccess::filters(["chat/#"])?, subscribe: TopicAccess::All },
/// );
/// assert!(grants.may_publish("chat/p2p/GID_app@@@phone-2"));
/// assert!(!grants.may_publish("news/today"));
/// assert!(grants.may_subscribe("news/#"));
/// assert!(grants.may_subscribe("$share/workers/news/+"));
/// assert!(!grants.may_subscribe("chat/p2p/GID_app@@@phone-2"));
/// # Ok::<(), mqgate_topic::TopicError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    client_id: Arc<str>,
    policy: AccessPolicy,
    /// Boxed: most connections have none, and every connection's task holds its grants.
    custom: Option<Box<CustomGrant>>,
}

impl Grants {
    /// Rights of `client_id` under `policy`.
    pub fn new(client_id: impl Into<Arc<str>>, policy: AccessPolicy) -> Self {
        Self {
            client_id: client_id.into(),
            policy,
            custom: None,
        }
    }

    /// Rights of `client_id` logged in as the custom identity `username`: whatever the
    /// permissions in `rules` allow at each check. [`policy`](Self::policy) is then empty.
    pub(crate) fn custom(client_id: &str, username: &str, rules: Arc<LiveRules>) -> Self {
        Self {
            client_id: client_id.into(),
            policy: AccessPolicy::none(),
            custom: Some(Box::new(CustomGrant::new(rules, username, client_id))),
        }
    }

    /// The username of the custom identity these rights follow, if they do.
    pub fn custom_username(&self) -> Option<&str> {
        self.custom.as_deref().map(CustomGrant::username)
    }

    /// Shares `client_id` when it is the id these rights belong to, so a caller that holds
    /// the id already (a broker, for the connection's life) keeps one copy, not two.
    /// Another id changes nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mqgate_auth::{AccessPolicy, Grants};
    /// let id: Arc<str> = Arc::from("GID_app@@@phone-1");
    /// let mut grants = Grants::new("GID_app@@@phone-1", AccessPolicy::all());
    /// grants.share_client_id(&id);
    /// assert_eq!(Arc::strong_count(&id), 2);
    /// grants.share_client_id(&Arc::from("GID_app@@@phone-2"));
    /// assert_eq!(grants.client_id(), "GID_app@@@phone-1");
    /// ```
    pub fn share_client_id(&mut self, client_id: &Arc<str>) {
        if self.client_id == *client_id {
            self.client_id = Arc::clone(client_id);
        }
    }

    /// The client these rights belong to.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The fixed policy behind them (empty for a custom identity, whose rights come from
    /// the live custom permissions instead).
    pub fn policy(&self) -> &AccessPolicy {
        &self.policy
    }

    /// Whether the connection may publish to `topic`. An invalid topic name
    /// (empty, wildcards, U+0000) is never allowed. Publishing to another
    /// client's P2P address is how P2P works, so only the policy decides.
    pub fn may_publish(&self, topic: &str) -> bool {
        TopicName::validate(topic).is_ok() && self.allows_publish_topic(topic)
    }

    /// Whether the policy, or the current custom permissions, allow publishing to `topic`,
    /// without validating it as a topic name first (a will's topic, checked at CONNECT).
    pub fn allows_publish_topic(&self, topic: &str) -> bool {
        match &self.custom {
            Some(custom) => custom.decide(&self.client_id, |rules| publish_allowed(rules, topic)),
            None => self.policy.publish.allows_topic(topic),
        }
    }

    /// Whether the connection may subscribe to `filter` (plain or
    /// `$share/{group}/{filter}`): valid, not aimed at another client's P2P
    /// address, and every topic it can match allowed by the policy.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        let Ok(subscription) = SubscriptionFilter::parse(filter) else {
            return false;
        };
        let filter = subscription.filter();
        if targets_other_p2p_address(filter.as_str(), &self.client_id) {
            return false;
        }
        match &self.custom {
            Some(custom) => {
                custom.decide(&self.client_id, |rules| subscribe_allowed(rules, filter))
            }
            None => self.policy.subscribe.allows_filter(filter),
        }
    }
}

/// Whether `filter`'s second level is literally `p2p` and what follows it is
/// anything but exactly `client_id`. Wildcards in the target position count
/// as "another client", so `a/p2p/+` and `a/p2p/#` are refused too.
fn targets_other_p2p_address(filter: &str, client_id: &str) -> bool {
    let Some((_parent, rest)) = filter.split_once('/') else {
        return false;
    };
    let Some(after) = rest.strip_prefix(P2P_LEVEL) else {
        return false;
    };
    match after.strip_prefix('/') {
        Some(target) => target != client_id,
        // `a/p2p` itself, or a level that only starts with `p2p`.
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "GID_a@@@me";

    fn grants(publish: &[&str], subscribe: &[&str]) -> Grants {
        Grants::new(
            ME,
            AccessPolicy {
                publish: TopicAccess::filters(publish).unwrap(),
                subscribe: TopicAccess::filters(subscribe).unwrap(),
            },
        )
    }

    #[test]
    fn publish_table() {
        let limited = grants(&["a/+/c", "b/#"], &[]);
        let everything = Grants::new(ME, AccessPolicy::all());
        let table = [
            (&limited, "a/x/c", true),
            (&limited, "a/x/c/d", false),
            (&limited, "b", true),
            (&limited, "b/p2p/GID_a@@@other", true),
            (&limited, "c", false),
            (&limited, "a/+/c", false),
            (&everything, "anything/at/all", true),
            (&everything, "$SYS/x", true),
            (&everything, "", false),
            (&everything, "a/#", false),
        ];
        for (grants, topic, allowed) in table {
            assert_eq!(grants.may_publish(topic), allowed, "{topic}");
        }
    }

    #[test]
    fn subscribe_needs_every_matchable_topic_allowed() {
        let limited = grants(&[], &["a/+/c", "b/#"]);
        let table = [
            ("a/x/c", true),
            ("a/+/c", true),
            ("a/#", false),
            ("a/+/+", false),
            ("b/#", true),
            ("b", true),
            ("b/x/+/y", true),
            ("#", false),
            ("$share/g/b/+", true),
            ("$share/g/a/#", false),
            ("$share//b/x", false),
            ("b/#/x", false),
        ];
        for (filter, allowed) in table {
            assert_eq!(limited.may_subscribe(filter), allowed, "{filter}");
        }
    }

    #[test]
    fn nobody_subscribes_to_another_clients_p2p_address() {
        let everything = Grants::new(ME, AccessPolicy::all());
        let table = [
            ("a/p2p/GID_a@@@me", true),
            ("a/p2p/GID_a@@@other", false),
            ("$share/g/a/p2p/GID_a@@@other", false),
            ("+/p2p/GID_a@@@other", false),
            ("a/p2p/+", false),
            ("a/p2p/#", false),
            ("a/p2p/GID_a@@@me/x", false),
            ("a/p2p/", false),
            ("a/p2p", true),
            ("a/p2pish/x", true),
            // Wildcards above the p2p level: allowed, the router never
            // delivers P2P topics through subscriptions.
            ("a/#", true),
            ("a/+/GID_a@@@other", true),
        ];
        for (filter, allowed) in table {
            assert_eq!(everything.may_subscribe(filter), allowed, "{filter}");
        }
    }

    #[test]
    fn union_of_access() {
        let a = TopicAccess::filters(["x"]).unwrap();
        let b = TopicAccess::filters(["y/#"]).unwrap();
        let both = a.clone().union(b);
        assert!(both.allows_topic("x") && both.allows_topic("y/z"));
        assert_eq!(a.union(TopicAccess::All), TopicAccess::All);
        assert!(!TopicAccess::none().allows_topic("x"));
    }
}
