//! Custom authentication: identities (a username and a secret), topic permissions and a
//! connect blacklist, managed at run time through the API and kept in the registry.
//!
//! # Logging in
//!
//! A CONNECT whose client id is on the **connect blacklist** is refused (CONNACK 5) whatever
//! its credentials. Otherwise, a username that names a custom identity logs in with it:
//!
//! - the client's own `CLIENT` identity (bound to its client id) when that identity has this
//!   username; else the `USER` identity of this username (any client id may present it);
//! - a username that only `CLIENT` identities of *other* client ids have is refused
//!   (CONNACK 4), so a `CLIENT` identity works only from its own client id;
//! - the password is the secret itself (`ORIGIN`) or Base64(HMAC-SHA1(key = the secret,
//!   data = the client id)) (`SIGNED`), compared in constant time; a wrong or missing one is
//!   refused with CONNACK 4;
//! - the client id must then be `GID_{group}@@@{device}` of a registered group, as in the
//!   other modes.
//!
//! A username that names no custom identity goes on to the signature, token and device
//! credential modes. Custom usernames never contain `|`, so they cannot be mistaken for those.
//!
//! # Permissions
//!
//! A connection that logged in with a custom identity may do what the permissions of its
//! `USER` identity (its username) and of its `CLIENT` identity (its client id) allow, and
//! nothing else:
//!
//! - a PUBLISH to a topic is allowed when some `ALLOW` permission covering `PUB` matches the
//!   topic and no `DENY` permission covering `PUB` does;
//! - a SUBSCRIBE filter is allowed when some `ALLOW` permission covering `SUB` contains it
//!   entirely (every topic it can match) and no `DENY` permission covering `SUB` shares a
//!   single topic with it: with `ALLOW a/#` and `DENY a/secret`, `a/+` is refused, since it
//!   would deliver `a/secret`;
//! - no permission, no right; `DENY` wins over `ALLOW` whatever their order.
//!
//! The decision is taken against the rules **current at each PUBLISH and SUBSCRIBE**: a
//! permission added, changed or removed applies to live connections from their next packet.
//! The rules are one immutable [`CustomRules`] snapshot behind an `Arc` in [`LiveRules`],
//! swapped whole on each change with a version number; a connection compares versions (one
//! atomic load) and rebuilds its own rule list only after a change, so the publish path
//! takes no shared lock. (Subscriptions already made are the broker's: a rule change does
//! not take them back.)
//!
//! Changing or deleting an identity affects new CONNECTs; live connections keep going under
//! the current permissions. Closing a blacklisted client that is online is the broker's part.

mod live;
mod manage;
mod records;
mod rules;

pub(crate) use live::CustomGrant;
pub use live::LiveRules;
pub use manage::{
    CustomAuthError, CustomResource, IdentitySpec, Page, PageRequest, PermissionSpec,
    MAX_CONNECT_BLACKLIST, MAX_CUSTOM_IDENTITIES, MAX_CUSTOM_PERMISSIONS, MAX_CUSTOM_SECRET_BYTES,
    MAX_CUSTOM_USERNAME_CHARS, MAX_PAGE_SIZE,
};
pub use records::{
    ConnectBlack, CustomIdentity, CustomPermission, Effect, IdentityKey, IdentityType,
    PermissionKey, PermitAction, SignMode,
};
pub use rules::{
    password_matches, publish_allowed, subscribe_allowed, CustomRules, IdentityMatch, Rule,
};
