//! Errors and randomness shared by token and device-credential management.

use base64::Engine as _;
use mqgate_topic::{ClientId, ClientIdError, ClientIdRules, TopicError};

use crate::{Authenticator, Registry, RegistryError};

/// Why a token or device-credential request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManageError {
    /// The AccessKeyId is not configured.
    #[error("unknown AccessKeyId {0:?}")]
    UnknownAccessKey(String),
    /// A token request lists no resource.
    #[error("a token needs at least one resource")]
    NoResources,
    /// A token request lists more resources than allowed.
    #[error("{count} resources, more than {max}")]
    TooManyResources {
        /// Resources requested.
        count: usize,
        /// The limit, [`MAX_TOKEN_RESOURCES`](crate::MAX_TOKEN_RESOURCES).
        max: usize,
    },
    /// A resource is not a valid topic filter.
    #[error("resource {resource:?} is not a topic filter: {error}")]
    BadResource {
        /// The resource as given.
        resource: String,
        /// What is wrong with it.
        error: TopicError,
    },
    /// A resource is beyond what the issuing AccessKey itself may do.
    #[error("resource {0:?} is not granted to the AccessKey")]
    ResourceNotGranted(String),
    /// The expiry is less than a minute away (or past).
    #[error("expiry {expire_time_ms} is before the earliest allowed {earliest_ms}")]
    ExpiryTooSoon {
        /// The requested expiry, ms since the epoch.
        expire_time_ms: u64,
        /// The earliest accepted, ms since the epoch.
        earliest_ms: u64,
    },
    /// No such token for this AccessKey.
    #[error("unknown token")]
    UnknownToken,
    /// The client id is not `GID_{group}@@@{device}`.
    #[error("bad client id: {0}")]
    BadClientId(ClientIdError),
    /// The client id's group is not registered.
    #[error("group {0:?} is not registered")]
    GroupNotRegistered(String),
    /// The client id has no device credential.
    #[error("no device credential for {0:?}")]
    UnknownDeviceCredential(String),
    /// The operating system's random generator failed; nothing was issued.
    #[error("random generator unavailable: {0}")]
    RandomUnavailable(String),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// `len` random bytes from the operating system, as unpadded URL-safe
/// Base64: no `|`, so it is safe inside usernames and token passwords.
pub(crate) fn random_text(len: usize) -> Result<String, ManageError> {
    let mut bytes = vec![0; len];
    getrandom::fill(&mut bytes)
        .map_err(|error| ManageError::RandomUnavailable(error.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Why a client id cannot have a session or a credential: shared by CONNECT
/// and device-credential registration, which report it in their own errors.
pub(crate) enum GroupCheck {
    BadClientId(ClientIdError),
    NotRegistered(String),
    Registry(RegistryError),
}

impl From<GroupCheck> for ManageError {
    fn from(check: GroupCheck) -> Self {
        match check {
            GroupCheck::BadClientId(error) => Self::BadClientId(error),
            GroupCheck::NotRegistered(group) => Self::GroupNotRegistered(group),
            GroupCheck::Registry(error) => Self::Registry(error),
        }
    }
}

impl<R: Registry> Authenticator<R> {
    /// Checks that `client_id` has the group form and its group is registered.
    pub(crate) fn require_registered_group(&self, client_id: &str) -> Result<(), GroupCheck> {
        let rules = ClientIdRules {
            require_group: true,
            ..ClientIdRules::default()
        };
        let client_id = ClientId::parse_with(client_id, &rules).map_err(GroupCheck::BadClientId)?;
        // `require_group` guarantees a group; the fallback only keeps this total.
        let group_id = client_id.group_id().unwrap_or_default();
        match self.registry.group(group_id) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(GroupCheck::NotRegistered(group_id.to_owned())),
            Err(error) => Err(GroupCheck::Registry(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_text_is_long_distinct_and_pipe_free() {
        let a = random_text(24).unwrap();
        let b = random_text(24).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(!a.contains('|'));
    }
}
