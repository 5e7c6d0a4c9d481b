//! The rules this crate implements, in prose, with where each lives.
//!
//! # Topic names and filters (MQTT 3.1.1 section 4.7)
//!
//! A topic name or filter is a UTF-8 string of 1 to 65535 bytes without
//! U+0000, divided into levels by `/`. Empty levels are levels: `a//b` has
//! three, `/a` and `a/` have two, and `/` has two empty ones. Matching is
//! exact and case-sensitive. ([`TopicName`](crate::TopicName),
//! [`TopicFilter`](crate::TopicFilter))
//!
//! A topic name carries no wildcard. In a filter, `+` stands for exactly one
//! level and must be a whole level (`sport+` is refused); `#` stands for the
//! level it replaces, its parent, and every level below, must be a whole
//! level, and must be last. So `sport/#` matches `sport` as well as
//! `sport/tennis/player1`, and `sport/+` matches `sport/` but not `sport`.
//!
//! A topic whose first level starts with `$` (`$SYS/...`) is reserved for the
//! server; a filter whose first level is `+` or `#` never matches it, while
//! `$SYS/#` does. `$` later in a topic has no special meaning.
//!
//! # Containment
//!
//! [`TopicFilter::contains`](crate::TopicFilter::contains) answers whether
//! every topic one filter can match is matched by another, level by level:
//! `#` contains any remainder (including none), `+` contains any single level
//! but not `#`, and an exact level contains only itself. The `$` rule carries
//! over: `#` does not contain `$SYS/#`. An authorisation layer allows a
//! subscription only when a granted filter contains it.
//!
//! # Shared subscriptions (SPEC.md section 1, "clustering" consumption)
//!
//! `$share/{group}/{filter}` joins the group `{group}` (non-empty, without
//! `/`, `+`, `#`) on `{filter}`. Each message matching the filter goes to one
//! member of the group, never to two. The pick follows a
//! [`SharePolicy`](crate::SharePolicy) (round robin by default, seeded random,
//! or sticky by publisher), skips members the caller marks unavailable, and is
//! reproducible. As in MQTT 5 (section 4.8.2), a group is identified by its
//! name *and* its filter: a group whose members subscribe with two different
//! filters that both match a topic receives that message once per filter.
//!
//! # Client ids (SPEC.md section 2)
//!
//! A client id is `{GroupId}@@@{DeviceId}`: the group id starts with `GID_`
//! and has a name after it, the device id is not empty, and the whole id
//! uses letters, digits and `-_.:@`, 64 bytes at most by default. The id is
//! split at the first `@@@`. A plain id without `@@@` is accepted unless
//! [`ClientIdRules::require_group`](crate::ClientIdRules::require_group) is
//! set, as the model service would. Checking whether the group is registered
//! is the broker's business, not this crate's.
//!
//! Those are [`ClientIdSyntax::Service`](crate::ClientIdSyntax::Service)'s
//! rules. [`ClientIdSyntax::Mqtt`](crate::ClientIdSyntax::Mqtt) accepts what
//! MQTT 3.1.1 lets a server accept: any UTF-8 id within the length limit
//! without control characters (`clean retained`, `ünïcödé`, `a/b`). Such an id
//! has a group only if the part before its first `@@@` is a valid group id;
//! any other id is plain. An id containing `/` has no P2P address (the `/`
//! would split the topic level).
//!
//! # P2P addresses (SPEC.md section 6)
//!
//! A message published to `{parent}/p2p/{clientId}` goes to that one client,
//! without any subscription. The client id is the last level: more levels
//! after it, a missing or invalid client id, or an empty parent are errors
//! ([`P2pError`](crate::P2pError)) the broker reports, while a topic whose
//! second level is not exactly `p2p` is an ordinary topic. From RocketMQ, the
//! same address is the parent topic plus the subtopic `/p2p/{clientId}`
//! ([`parse_p2p_subtopic`](crate::parse_p2p_subtopic)).
//!
//! # Retained messages
//!
//! A retained message is kept per topic name; a new subscription receives the
//! retained messages of every topic its filter matches, by the same rules as
//! above, `$` rule included. [`RetainedIndex`](crate::RetainedIndex) walks
//! only the branches the filter selects.
//!
//! # Limits
//!
//! Trie operations recurse once per level, so the indexes refuse filters and
//! topics deeper than [`DEFAULT_MAX_LEVELS`](crate::DEFAULT_MAX_LEVELS) (256,
//! configurable) with [`TopicError::TooManyLevels`](crate::TopicError::TooManyLevels).
//! Parsers accept any depth.
