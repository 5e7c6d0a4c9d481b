//! Issuing, querying and revoking tokens, and turning presented tokens
//! into rights.

use mqgate_topic::TopicFilter;

use crate::manage::random_text;
use crate::{
    AccessPolicy, Authenticator, ManageError, Registry, TokenActions, TokenRecord, TopicAccess,
};

/// Most topic filters one token may cover.
pub const MAX_TOKEN_RESOURCES: usize = 100;
/// A token must live at least this long from issue, in ms (60 s).
pub const MIN_TOKEN_LIFETIME_MS: u64 = 60 * 1000;
/// Longest a token may live from issue, in ms (30 days); later expiries are
/// cut down to this.
pub const MAX_TOKEN_LIFETIME_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// Random bytes in a token (192 bits, above the 128 required).
const TOKEN_RANDOM_BYTES: usize = 24;

/// What a backend asks a token for.
///
/// # Tokens and device credentials
///
/// A token is issued to an AccessKey for up to
/// [`MAX_TOKEN_RESOURCES`](crate::MAX_TOKEN_RESOURCES) topic filters (wildcards
/// allowed) and actions `R`, `W` or `R,W`. Its expiry is an absolute time in
/// ms since the epoch, at least 60 s ahead; an expiry more than 30 days ahead
/// is cut to 30 days (the record returned shows the effective expiry). A
/// token carries 192 random bits from the operating system, encoded as
/// URL-safe Base64 (32 characters, never a `|`). A token cannot grant more
/// than its AccessKey's own [`AccessPolicy`](crate::AccessPolicy): each
/// resource must be contained in the key's subscribe policy for `R` and its
/// publish policy for `W`. Tokens can be queried whether valid or not, and
/// revoked; a revoked record is kept so queries still answer.
/// [`InMemoryRegistry::purge_tokens_expired_before`](crate::InMemoryRegistry::purge_tokens_expired_before)
/// bounds memory.
///
/// A device credential belongs to one client id (whose group must be
/// registered): a DeviceAccessKeyId and a DeviceAccessKeySecret (256 random
/// bits). Registering twice returns the existing credential; refreshing
/// replaces the secret, and the old one stops working at once; unregistering
/// removes it. Device-credential connections get
/// [`AuthConfig::device_credential_policy`](crate::AuthConfig::device_credential_policy),
/// everything by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Topic filters, wildcards allowed, 1 to [`MAX_TOKEN_RESOURCES`].
    pub resources: Vec<String>,
    /// What the token allows on them.
    pub actions: TokenActions,
    /// When it expires, ms since the epoch: at least [`MIN_TOKEN_LIFETIME_MS`]
    /// ahead, and cut to [`MAX_TOKEN_LIFETIME_MS`] ahead.
    pub expire_time_ms: u64,
}

impl<R: Registry> Authenticator<R> {
    /// Issues a token for `access_key_id` at `now_ms`. Each resource must be
    /// within what the AccessKey's own policy allows for the requested
    /// actions, so a token never grants more than its issuer has.
    ///
    /// ```
    /// use mqgate_auth::*;
    /// let auth = Authenticator::new(
    ///     AuthConfig::new("inst").with_access_key(AccessKey::new("AK", "secret")),
    ///     InMemoryRegistry::new(),
    /// );
    /// let now = 1_700_000_000_000;
    /// let request = TokenRequest {
    ///     resources: vec!["shop/+/cmd".into()],
    ///     actions: TokenActions::Read,
    ///     expire_time_ms: now + 3_600_000,
    /// };
    /// let token = auth.issue_token("AK", request, now)?;
    /// assert!(auth.query_token("AK", &token.token)?.is_valid(now));
    /// auth.revoke_token("AK", &token.token)?;
    /// assert!(!auth.query_token("AK", &token.token)?.is_valid(now));
    /// # Ok::<(), ManageError>(())
    /// ```
    pub fn issue_token(
        &self,
        access_key_id: &str,
        request: TokenRequest,
        now_ms: u64,
    ) -> Result<TokenRecord, ManageError> {
        let key = self
            .access_key(access_key_id)
            .ok_or_else(|| ManageError::UnknownAccessKey(access_key_id.to_owned()))?;
        check_resources(&request, &key.policy)?;
        let earliest_ms = now_ms.saturating_add(MIN_TOKEN_LIFETIME_MS);
        if request.expire_time_ms < earliest_ms {
            return Err(ManageError::ExpiryTooSoon {
                expire_time_ms: request.expire_time_ms,
                earliest_ms,
            });
        }
        let record = TokenRecord {
            token: random_text(TOKEN_RANDOM_BYTES)?,
            access_key_id: key.access_key_id.clone(),
            instance_id: self.config.instance_id.clone(),
            resources: request.resources,
            actions: request.actions,
            create_time_ms: now_ms,
            expire_time_ms: request
                .expire_time_ms
                .min(now_ms.saturating_add(MAX_TOKEN_LIFETIME_MS)),
            revoked: false,
        };
        self.registry.put_token(record.clone())?;
        Ok(record)
    }

    /// The record of `token`, valid or not, if `access_key_id` issued it.
    /// Check [`TokenRecord::is_valid`] for its status.
    pub fn query_token(
        &self,
        access_key_id: &str,
        token: &str,
    ) -> Result<TokenRecord, ManageError> {
        self.registry
            .token(token)?
            .filter(|record| record.access_key_id == access_key_id)
            .ok_or(ManageError::UnknownToken)
    }

    /// Revokes `token` (issued by `access_key_id`): new connections can no
    /// longer use it. The record is kept so queries still answer. Revoking
    /// twice is not an error.
    pub fn revoke_token(
        &self,
        access_key_id: &str,
        token: &str,
    ) -> Result<TokenRecord, ManageError> {
        let mut record = self.query_token(access_key_id, token)?;
        record.revoked = true;
        self.registry.put_token(record.clone())?;
        Ok(record)
    }
}

fn check_resources(request: &TokenRequest, issuer: &AccessPolicy) -> Result<(), ManageError> {
    if request.resources.is_empty() {
        return Err(ManageError::NoResources);
    }
    if request.resources.len() > MAX_TOKEN_RESOURCES {
        return Err(ManageError::TooManyResources {
            count: request.resources.len(),
            max: MAX_TOKEN_RESOURCES,
        });
    }
    for resource in &request.resources {
        let filter = TopicFilter::parse(resource).map_err(|error| ManageError::BadResource {
            resource: resource.clone(),
            error,
        })?;
        let granted = (!request.actions.can_read() || issuer.subscribe.allows_filter(&filter))
            && (!request.actions.can_write() || issuer.publish.allows_filter(&filter));
        if !granted {
            return Err(ManageError::ResourceNotGranted(resource.clone()));
        }
    }
    Ok(())
}

/// The rights accumulated from the tokens a client presented.
#[derive(Debug, Default)]
pub(crate) struct TokenAccess {
    subscribe: Vec<TopicFilter>,
    publish: Vec<TopicFilter>,
}

impl TokenAccess {
    /// Adds `record`'s resources to the directions it was offered for (and
    /// that it allows; the caller has checked that). A stored resource that
    /// no longer parses grants nothing.
    pub(crate) fn add(&mut self, record: &TokenRecord, read: bool, write: bool) {
        let filters = record
            .resources
            .iter()
            .filter_map(|resource| TopicFilter::parse(resource).ok());
        for filter in filters {
            if read && record.actions.can_read() {
                self.subscribe.push(filter.clone());
            }
            if write && record.actions.can_write() {
                self.publish.push(filter);
            }
        }
    }

    pub(crate) fn into_policy(self) -> AccessPolicy {
        AccessPolicy {
            publish: TopicAccess::Only(self.publish),
            subscribe: TopicAccess::Only(self.subscribe),
        }
    }
}
