//! Authentication and authorisation for mqgate: who may connect, and what
//! they may publish and subscribe to. No I/O: time is an argument, storage
//! is behind the [`Registry`] trait.
//!
//! ```text
//!  CONNECT (client id, username, password), now
//!        │
//!        ▼
//!  Authenticator::authenticate ──reads──▶ Registry (groups, tokens, device credentials)
//!        │                      ──reads──▶ LiveRules (custom identities, blacklist)
//!        │
//!        ├─ Ok(Authenticated { method, grants })  → CONNACK 0; keep `grants`
//!        └─ Err(AuthFailure { code, reason })      → CONNACK `code`; log `reason`
//!
//!  PUBLISH topic   → grants.may_publish(topic)
//!  SUBSCRIBE filter→ grants.may_subscribe(filter)
//!                    (a custom identity's grants read the custom rules current now)
//!
//!  HTTP API request → openapi::verify_request(parts, secret lookup, now, &NonceGuard)
//!                     → Ok(VerifiedRequest { access_key_id, params, .. })
//! ```
//!
//! # Contract
//!
//! * [`Authenticator::authenticate`] never panics on what a client sends and
//!   answers with a CONNACK code: 4 for credentials that are malformed or do
//!   not verify, 5 for credentials that verify (or are absent) but do not
//!   allow a connection, 2 for a client id without a `GID_` group, 3 when the
//!   registry fails. [`Authenticator`] has the full table.
//! * Every secret, signature and token comparison is constant time.
//! * Tokens and device secrets come from the operating system's generator
//!   ([`getrandom`](https://docs.rs/getrandom)); if it fails, nothing is
//!   issued and an error is returned.
//! * [`Grants`] decide per message; the broker must also honour the P2P
//!   routing rule described on [`Grants`].
//! * [`openapi::verify_request`] is a pure function over the request's parts;
//!   its [`openapi::NonceGuard`] is the only state, with bounded memory.
//!
//! # Example
//!
//! ```
//! use mqgate_auth::*;
//!
//! let registry = InMemoryRegistry::new();
//! registry.put_group(GroupRecord::new("GID_shop", 0))?;
//! let config = AuthConfig::new("mqtt-test").with_access_key(AccessKey::new("AK", "secret"));
//! let auth = Authenticator::new(config, registry);
//!
//! let password = sign_client_id("secret", "GID_shop@@@tag-1");
//! let session = auth
//!     .authenticate("GID_shop@@@tag-1", Some("Signature|AK|mqtt-test"), Some(password.as_bytes()), 0)?;
//! assert!(session.grants.may_publish("shop/tag-1/status"));
//!
//! let refused = auth
//!     .authenticate("GID_shop@@@tag-1", Some("Signature|AK|mqtt-test"), Some(b"wrong"), 0)
//!     .unwrap_err();
//! assert_eq!(refused.code.as_u8(), 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod authenticator;
mod credentials;
mod crypto;
pub mod custom;
mod devices;
mod failure;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod grants;
mod manage;
pub mod openapi;
mod records;
mod registry;
mod tokens;

pub use authenticator::{AccessKey, AuthConfig, AuthMethod, Authenticated, Authenticator};
pub use credentials::{
    secrets_equal, sign_client_id, verify_client_id_signature, AuthMode, CredentialError,
    TokenPassword, Username,
};
pub use custom::{
    publish_allowed, subscribe_allowed, ConnectBlack, CustomAuthError, CustomIdentity,
    CustomPermission, CustomRules, Effect, IdentityKey, IdentityType, LiveRules, PermissionKey,
    PermitAction, Rule, SignMode,
};
pub use failure::{AuthFailure, ConnackCode, FailureReason};
pub use grants::{AccessPolicy, Grants, TopicAccess};
pub use manage::ManageError;
pub use records::{DeviceCredential, GroupRecord, TokenActions, TokenRecord};
pub use registry::{InMemoryRegistry, Registry, RegistryError};
pub(crate) use tokens::TokenAccess;
pub use tokens::{TokenRequest, MAX_TOKEN_LIFETIME_MS, MAX_TOKEN_RESOURCES, MIN_TOKEN_LIFETIME_MS};
