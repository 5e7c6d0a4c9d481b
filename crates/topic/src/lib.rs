//! Everything an MQTT broker needs to decide who gets a message, with no I/O.
//!
//! ```text
//!  PUBLISH topic ──► TopicName::validate ──► P2pAddress::parse ──► Some: deliver to that client id
//!                                                    │
//!                                                   None
//!                                                    ▼
//!               SubscriptionTrie::match_topic_with(topic, publisher, available, &mut Matches)
//!                  ├─ plain subscribers, each once at its highest QoS
//!                  └─ one member per matching `$share/{group}/{filter}`
//!
//!  SUBSCRIBE filter ─► SubscriptionFilter::parse ─► SubscriptionTrie::subscribe
//!                                                └► RetainedIndex::matching ─► retained messages to send
//! ```
//!
//! # Contract
//!
//! - Nothing here performs I/O, reads a clock or spawns anything; every input is
//!   an argument and every answer a return value, so the crate runs the same
//!   under tokio, a simulation, or a plain unit test.
//! - Nothing that comes from a peer can panic: parsers return [`TopicError`],
//!   [`ClientIdError`] or [`P2pError`], and the indexes refuse filters deeper
//!   than a configured limit ([`TrieConfig::max_levels`]) rather than recursing
//!   without bound.
//! - Matching takes `&self` and, with a reused [`Matches`] buffer, allocates
//!   nothing; [`SubscriptionTrie`] is `Send + Sync` when its keys and values
//!   are, so it can sit behind a read-write lock.
//! - Removing the last subscription of a branch frees the branch:
//!   [`SubscriptionTrie::node_count`] returns to zero.
//!
//! The protocol rules implemented, in prose, follow the example below.
//!
//! # Example
//!
//! ```
//! use mqgate_topic::{Matches, P2pAddress, SubscriptionFilter, SubscriptionTrie, TopicName};
//!
//! let mut trie = SubscriptionTrie::new();
//! trie.subscribe(&SubscriptionFilter::parse("dev/+/status")?, "dashboard", 1)?;
//! trie.subscribe(&SubscriptionFilter::parse("$share/backend/dev/#")?, "worker-1", 1)?;
//! trie.subscribe(&SubscriptionFilter::parse("$share/backend/dev/#")?, "worker-2", 1)?;
//!
//! let topic = "dev/7/status";
//! TopicName::validate(topic)?;
//! assert_eq!(P2pAddress::parse(topic), Ok(None));
//!
//! let mut out = Matches::new();
//! trie.match_topic(topic, &mut out);
//! assert_eq!(out.plain().collect::<Vec<_>>(), [(&"dashboard", &1)]);
//! assert_eq!(out.shared(), [("worker-1", 1)]);
//! trie.match_topic(topic, &mut out);
//! assert_eq!(out.shared(), [("worker-2", 1)]);
//! # Ok::<(), mqgate_topic::TopicError>(())
//! ```
//!
#![doc = include_str!("rules.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod children;
mod client_id;
mod error;
mod filter;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
mod naive;
mod name;
mod p2p;
mod retained;
mod shared;
mod trie;

pub use client_id::{
    ClientId, ClientIdError, ClientIdRules, ClientIdSyntax, DEFAULT_MAX_CLIENT_ID_LEN,
    DEFAULT_MAX_GROUP_ID_LEN, GROUP_PREFIX, GROUP_SEPARATOR,
};
pub use error::TopicError;
pub use filter::{filter_matches, Level, Levels, TopicFilter};
pub use name::{TopicName, MAX_TOPIC_LEN};
pub use p2p::{format_p2p, p2p_subtopic, parse_p2p_subtopic, P2pAddress, P2pError, P2P_LEVEL};
pub use retained::RetainedIndex;
pub use shared::{validate_group, SubscriptionFilter, SHARE_PREFIX};
pub use trie::{Matches, SharePolicy, SubscriptionTrie, TrieConfig, DEFAULT_MAX_LEVELS};

/// The README's example, run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
