//! Managing the custom rules through the [`Authenticator`]: add, update, delete and query
//! identities, permissions and blacklisted client ids. Each change is written to the
//! registry first, then a new snapshot is made current.

use std::sync::Arc;

use base64::Engine as _;
use mqgate_topic::{ClientId, ClientIdRules, TopicFilter};

use super::records::{
    ConnectBlack, CustomIdentity, CustomPermission, Effect, IdentityKey, IdentityType,
    PermissionKey, PermitAction, SignMode,
};
use super::rules::CustomRules;
use crate::{Authenticator, Registry, RegistryError};

/// Most custom identities one broker keeps.
pub const MAX_CUSTOM_IDENTITIES: usize = 10_000;
/// Most custom permissions one broker keeps.
pub const MAX_CUSTOM_PERMISSIONS: usize = 10_000;
/// Most client ids on the connect blacklist.
pub const MAX_CONNECT_BLACKLIST: usize = 10_000;
/// Longest custom username, in characters.
pub const MAX_CUSTOM_USERNAME_CHARS: usize = 64;
/// Longest custom secret, in bytes.
pub const MAX_CUSTOM_SECRET_BYTES: usize = 128;
/// Most results on one page of a query.
pub const MAX_PAGE_SIZE: u64 = 100;

/// What a custom-rule request names, for [`CustomAuthError`]'s not-found and conflict cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomResource {
    /// An identity.
    Identity,
    /// A permission.
    Permission,
    /// A blacklisted client id.
    ConnectBlack,
}

impl CustomResource {
    /// The resource's name in the API's error codes (`{name}.NotFound`).
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Identity => "CustomAuthIdentity",
            Self::Permission => "CustomAuthPermission",
            Self::ConnectBlack => "CustomAuthConnectBlack",
        }
    }
}

/// Why a custom-rule request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomAuthError {
    /// A required parameter is absent or empty.
    #[error("the parameter {0} is required")]
    Missing(&'static str),
    /// A parameter has a bad value.
    #[error("the parameter {parameter} is invalid: {reason}")]
    Invalid {
        /// The parameter's API name.
        parameter: &'static str,
        /// Why.
        reason: String,
    },
    /// No such identity, permission or blacklisted client id.
    #[error("no such {}", .0.api_name())]
    NotFound(CustomResource),
    /// The identity, permission or blacklisted client id exists already.
    #[error("the {} exists already", .0.api_name())]
    AlreadyExists(CustomResource),
    /// The broker keeps no more of these.
    #[error("more than {max} of {} is not allowed", .what.api_name())]
    OverCapacity {
        /// What is full.
        what: CustomResource,
        /// The limit.
        max: usize,
    },
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

fn invalid(parameter: &'static str, reason: impl Into<String>) -> CustomAuthError {
    CustomAuthError::Invalid {
        parameter,
        reason: reason.into(),
    }
}

/// An identity as the API sends it: `IdentityType`, `Username`, `ClientId` (`CLIENT` only),
/// `Secret` and `SignMode` (absent means `SIGNED`).
#[derive(Debug, Clone, Copy)]
pub struct IdentitySpec<'a> {
    /// `USER` or `CLIENT`.
    pub identity_type: &'a str,
    /// The username.
    pub username: &'a str,
    /// The client id, for `CLIENT`.
    pub client_id: Option<&'a str>,
    /// The secret.
    pub secret: &'a str,
    /// `ORIGIN` or `SIGNED`.
    pub sign_mode: Option<&'a str>,
}

/// A permission as the API sends it: `IdentityType`, `Identity`, `Topic`, `PermitAction`,
/// `Effect`.
#[derive(Debug, Clone, Copy)]
pub struct PermissionSpec<'a> {
    /// `USER` or `CLIENT`.
    pub identity_type: &'a str,
    /// The username or client id.
    pub identity: &'a str,
    /// A topic filter.
    pub topic: &'a str,
    /// `PUB`, `SUB` or `PUB_SUB`.
    pub permit_action: &'a str,
    /// `ALLOW` or `DENY`.
    pub effect: &'a str,
}

/// One page of a query: at most `size` results after the position `NextToken` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    size: usize,
    after: Option<String>,
}

impl PageRequest {
    /// A page of `size` (1 to [`MAX_PAGE_SIZE`]) results, after `next_token` (as a previous
    /// page returned it; absent or empty for the first page).
    ///
    /// # Errors
    /// [`CustomAuthError::Invalid`] naming `Size` or `NextToken`.
    pub fn new(size: u64, next_token: Option<&str>) -> Result<Self, CustomAuthError> {
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(invalid("Size", format!("must be 1 to {MAX_PAGE_SIZE}")));
        }
        let after = match next_token.filter(|token| !token.is_empty()) {
            None => None,
            Some(token) => {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(token)
                    .map_err(|_| invalid("NextToken", "not a token this API returned"))?;
                let key = String::from_utf8(bytes)
                    .map_err(|_| invalid("NextToken", "not a token this API returned"))?;
                Some(key)
            }
        };
        Ok(PageRequest {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            after,
        })
    }

    /// Takes this page from `items`, sorted by key, keeping those `keep` accepts.
    fn take<'a, T: Clone + 'a>(
        &self,
        items: impl Iterator<Item = (&'a str, &'a T)>,
        keep: impl Fn(&T) -> bool,
    ) -> Page<T> {
        let mut results = Vec::new();
        let mut next_token = None;
        let after = self.after.as_deref();
        for (key, item) in items.filter(|(key, _)| after.is_none_or(|after| *key > after)) {
            if !keep(item) {
                continue;
            }
            if results.len() == self.size {
                next_token = results.last().map(|(last, _): &(&str, T)| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
                });
                break;
            }
            results.push((key, item.clone()));
        }
        Page {
            results: results.into_iter().map(|(_, item)| item).collect(),
            next_token,
        }
    }
}

/// One page of results, and the token of the next page when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The results, sorted.
    pub results: Vec<T>,
    /// Pass it back for the next page; `None` on the last page.
    pub next_token: Option<String>,
}

fn identity_type(text: &str) -> Result<IdentityType, CustomAuthError> {
    IdentityType::parse(text).ok_or_else(|| {
        invalid(
            "IdentityType",
            format!("one of {}", IdentityType::choices().trim_end()),
        )
    })
}

fn check_username(parameter: &'static str, username: &str) -> Result<(), CustomAuthError> {
    let chars = username.chars().count();
    if chars == 0 || chars > MAX_CUSTOM_USERNAME_CHARS {
        return Err(invalid(
            parameter,
            format!("1 to {MAX_CUSTOM_USERNAME_CHARS} characters"),
        ));
    }
    if username.chars().any(|c| c == '|' || c.is_control()) {
        return Err(invalid(
            parameter,
            "no '|' (the other login modes' separator) and no control characters",
        ));
    }
    Ok(())
}

fn check_client_id(parameter: &'static str, client_id: &str) -> Result<(), CustomAuthError> {
    let rules = ClientIdRules {
        require_group: true,
        ..ClientIdRules::default()
    };
    ClientId::parse_with(client_id, &rules)
        .map(|_| ())
        .map_err(|error| invalid(parameter, error.to_string()))
}

/// The identity's key and whether `USER`/`CLIENT` got the right fields.
fn identity_key(
    kind: IdentityType,
    username: &str,
    client_id: Option<&str>,
) -> Result<IdentityKey, CustomAuthError> {
    check_username("Username", username)?;
    let name = match (kind, client_id) {
        (IdentityType::User, None) => username.to_owned(),
        (IdentityType::User, Some(_)) => {
            return Err(invalid(
                "ClientId",
                "only an identity of type CLIENT has one",
            ))
        }
        (IdentityType::Client, None) => return Err(CustomAuthError::Missing("ClientId")),
        (IdentityType::Client, Some(client_id)) => {
            check_client_id("ClientId", client_id)?;
            client_id.to_owned()
        }
    };
    Ok(IdentityKey {
        identity_type: kind,
        name,
    })
}

fn parse_identity(spec: &IdentitySpec<'_>, now_ms: u64) -> Result<CustomIdentity, CustomAuthError> {
    let kind = identity_type(spec.identity_type)?;
    identity_key(kind, spec.username, spec.client_id)?;
    if spec.secret.is_empty() || spec.secret.len() > MAX_CUSTOM_SECRET_BYTES {
        return Err(invalid(
            "Secret",
            format!("1 to {MAX_CUSTOM_SECRET_BYTES} bytes"),
        ));
    }
    let sign_mode = match spec.sign_mode {
        None => SignMode::Signed,
        Some(text) => SignMode::parse(text).ok_or_else(|| {
            invalid(
                "SignMode",
                format!("one of {}", SignMode::choices().trim_end()),
            )
        })?,
    };
    Ok(CustomIdentity {
        identity_type: kind,
        username: spec.username.to_owned(),
        client_id: spec.client_id.map(str::to_owned),
        secret: spec.secret.to_owned(),
        sign_mode,
        create_time_ms: now_ms,
        update_time_ms: now_ms,
    })
}

fn permission_key(
    identity_type_text: &str,
    identity: &str,
    topic: &str,
) -> Result<PermissionKey, CustomAuthError> {
    let kind = identity_type(identity_type_text)?;
    match kind {
        IdentityType::User => check_username("Identity", identity)?,
        IdentityType::Client => check_client_id("Identity", identity)?,
    }
    if topic.starts_with("$share/") {
        return Err(invalid(
            "Topic",
            "a topic filter, not a shared subscription",
        ));
    }
    TopicFilter::parse(topic).map_err(|error| invalid("Topic", error.to_string()))?;
    Ok(PermissionKey {
        identity_type: kind,
        identity: identity.to_owned(),
        topic: topic.to_owned(),
    })
}

fn parse_permission(
    spec: &PermissionSpec<'_>,
    now_ms: u64,
) -> Result<CustomPermission, CustomAuthError> {
    let key = permission_key(spec.identity_type, spec.identity, spec.topic)?;
    let permit_action = PermitAction::parse(spec.permit_action).ok_or_else(|| {
        invalid(
            "PermitAction",
            format!("one of {}", PermitAction::choices().trim_end()),
        )
    })?;
    let effect = Effect::parse(spec.effect)
        .ok_or_else(|| invalid("Effect", format!("one of {}", Effect::choices().trim_end())))?;
    Ok(CustomPermission {
        identity_type: key.identity_type,
        identity: key.identity,
        topic: key.topic,
        permit_action,
        effect,
        create_time_ms: now_ms,
        update_time_ms: now_ms,
    })
}

/// Whether one more `what` may be added: not there yet, and fewer than `max` of them.
fn room_for(
    what: CustomResource,
    exists: bool,
    count: usize,
    max: usize,
) -> Result<(), CustomAuthError> {
    if exists {
        return Err(CustomAuthError::AlreadyExists(what));
    }
    if count >= max {
        return Err(CustomAuthError::OverCapacity { what, max });
    }
    Ok(())
}

/// Every record of a snapshot, to build the next one from.
struct Records {
    identities: Vec<CustomIdentity>,
    permissions: Vec<CustomPermission>,
    blacklist: Vec<ConnectBlack>,
}

impl Records {
    fn of(rules: &CustomRules) -> Self {
        Records {
            identities: rules.identities().map(|(_, i)| i.clone()).collect(),
            permissions: rules.permissions().map(|(_, p)| p.clone()).collect(),
            blacklist: rules.blacklist().map(|(_, b)| b.clone()).collect(),
        }
    }

    fn into_rules(self) -> CustomRules {
        CustomRules::new(self.identities, self.permissions, self.blacklist)
    }
}

impl<R: Registry> Authenticator<R> {
    /// The live custom rules (shared with the grants of custom-identity connections).
    pub fn custom_rules(&self) -> &Arc<super::LiveRules> {
        &self.custom
    }

    /// The current snapshot, loaded from the registry first if it has not been yet.
    ///
    /// # Errors
    /// The registry's, when it has to be read and fails.
    pub fn current_custom_rules(&self) -> Result<Arc<CustomRules>, RegistryError> {
        if !self.custom.is_loaded() {
            let rules = CustomRules::new(
                self.registry.custom_identities()?,
                self.registry.custom_permissions()?,
                self.registry.connect_blacklist()?,
            );
            self.custom.replace(rules);
        }
        Ok(self.custom.snapshot())
    }

    /// Runs `write`, a change of the registry's custom records made outside this
    /// authenticator (another cluster node's, say), with this authenticator's own changes of
    /// them excluded, then makes what the registry holds the current rules.
    ///
    /// # Errors
    /// The registry's, when its records cannot be read back (the rules are then read again
    /// at the next CONNECT or change).
    pub fn reload_custom_rules_after<T>(
        &self,
        write: impl FnOnce(&R) -> T,
    ) -> Result<T, RegistryError> {
        self.custom.write(|live| {
            let out = write(&self.registry);
            let rules = CustomRules::new(
                self.registry.custom_identities()?,
                self.registry.custom_permissions()?,
                self.registry.connect_blacklist()?,
            );
            live.replace(rules);
            Ok(out)
        })
    }

    /// Whether `client_id` is on the connect blacklist now (false when the rules cannot be
    /// read: the CONNECT check itself reports that).
    pub fn is_connect_blacklisted(&self, client_id: &str) -> bool {
        self.custom.snapshot().is_blacklisted(client_id)
    }

    /// Runs one change with other writers excluded: `change` gets the current records,
    /// stores what it changes in the registry, and edits the records; the result becomes
    /// the current snapshot.
    fn change<T>(
        &self,
        change: impl FnOnce(&CustomRules, &mut Records) -> Result<T, CustomAuthError>,
    ) -> Result<T, CustomAuthError> {
        self.custom.write(|live| {
            let current = self.current_custom_rules()?;
            let mut records = Records::of(&current);
            let out = change(&current, &mut records)?;
            live.replace(records.into_rules());
            Ok(out)
        })
    }

    /// `AddCustomAuthIdentity`: a new identity (a `USER` username, or a `CLIENT` client id,
    /// not yet known).
    ///
    /// # Errors
    /// Bad parameters, [`CustomAuthError::AlreadyExists`], [`CustomAuthError::OverCapacity`],
    /// the registry's.
    pub fn add_custom_identity(
        &self,
        spec: &IdentitySpec<'_>,
        now_ms: u64,
    ) -> Result<CustomIdentity, CustomAuthError> {
        let identity = parse_identity(spec, now_ms)?;
        self.change(|current, records| {
            room_for(
                CustomResource::Identity,
                current.identity(&identity.key()).is_some(),
                records.identities.len(),
                MAX_CUSTOM_IDENTITIES,
            )?;
            self.registry.put_custom_identity(identity.clone())?;
            records.identities.push(identity.clone());
            Ok(identity)
        })
    }

    /// `UpdateCustomAuthIdentity`: a new secret and sign mode for an existing identity (and,
    /// for a `CLIENT` identity, a new username).
    ///
    /// # Errors
    /// Bad parameters, [`CustomAuthError::NotFound`], the registry's.
    pub fn update_custom_identity(
        &self,
        spec: &IdentitySpec<'_>,
        now_ms: u64,
    ) -> Result<CustomIdentity, CustomAuthError> {
        let mut identity = parse_identity(spec, now_ms)?;
        let key = identity.key();
        self.change(|current, records| {
            let old = current
                .identity(&key)
                .ok_or(CustomAuthError::NotFound(CustomResource::Identity))?;
            identity.create_time_ms = old.create_time_ms;
            self.registry.put_custom_identity(identity.clone())?;
            records.identities.retain(|i| i.key() != key);
            records.identities.push(identity.clone());
            Ok(identity)
        })
    }

    /// `DeleteCustomAuthIdentity`: the identity of `username` (`USER`) or of `client_id`
    /// with `username` (`CLIENT`). Its permissions stay.
    ///
    /// # Errors
    /// Bad parameters, [`CustomAuthError::NotFound`], the registry's.
    pub fn delete_custom_identity(
        &self,
        identity_type_text: &str,
        username: &str,
        client_id: Option<&str>,
    ) -> Result<CustomIdentity, CustomAuthError> {
        let key = identity_key(identity_type(identity_type_text)?, username, client_id)?;
        self.change(|current, records| {
            let found = current
                .identity(&key)
                .filter(|identity| identity.username == username)
                .ok_or(CustomAuthError::NotFound(CustomResource::Identity))?
                .clone();
            self.registry.remove_custom_identity(&key)?;
            records.identities.retain(|i| i.key() != key);
            Ok(found)
        })
    }

    /// `QueryCustomAuthIdentity`: the identities of the type, username and client id given
    /// (each optional), sorted by type then username or client id.
    ///
    /// # Errors
    /// A bad `IdentityType`, the registry's.
    pub fn query_custom_identities(
        &self,
        identity_type_text: Option<&str>,
        username: Option<&str>,
        client_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<CustomIdentity>, CustomAuthError> {
        let kind = identity_type_text.map(identity_type).transpose()?;
        let rules = self.current_custom_rules()?;
        Ok(page.take(rules.identities(), |identity| {
            kind.is_none_or(|kind| identity.identity_type == kind)
                && username.is_none_or(|u| identity.username == u)
                && client_id.is_none_or(|c| identity.client_id.as_deref() == Some(c))
        }))
    }

    /// `AddCustomAuthPermission`: a new permission of an identity on a topic filter.
    ///
    /// # Errors
    /// Bad parameters, [`CustomAuthError::AlreadyExists`] (same identity and topic),
    /// [`CustomAuthError::OverCapacity`], the registry's.
    pub fn add_custom_permission(
        &self,
        spec: &PermissionSpec<'_>,
        now_ms: u64,
    ) -> Result<CustomPermission, CustomAuthError> {
        let permission = parse_permission(spec, now_ms)?;
        self.change(|current, records| {
            room_for(
                CustomResource::Permission,
                current.permission(&permission.key()).is_some(),
                records.permissions.len(),
                MAX_CUSTOM_PERMISSIONS,
            )?;
            self.registry.put_custom_permission(permission.clone())?;
            records.permissions.push(permission.clone());
            Ok(permission)
        })
    }

    /// `UpdateCustomAuthPermission`: a new action and effect for an existing permission.
    ///
    /// # Errors
    /// Bad parameters, [`CustomAuthError::NotFound`], the registry's.
    pub fn update_custom_permission(
        &self,
        spec: &PermissionSpec<'_>,
        now_ms: u64,
    ) -> Result<CustomPermission, CustomAuthError> {
        let mut permission = parse_permission(spec, now_ms)?;
        let key = permission.key();
        self.change(|current, records| {
            let old = current
                .permission(&key)
                .ok_or(CustomAuthError::NotFound(CustomResource::Permission))?;
            permission.create_time_ms = old.create_time_ms;
            self.registry.put_custom_permission(permission.clone())?;
            records.permissions.retain(|p| p.key() != key);
            records.permissions.push(permission.clone());
            Ok(permission)
        })
    }

    /// `DeleteCustomAuthPermission`: the permission of an identity on a topic filter.
    ///
    /// # Errors
    /// Bad parameters, [`CustomAuthError::NotFound`], the registry's.
    pub fn delete_custom_permission(
        &self,
        identity_type_text: &str,
        identity: &str,
        topic: &str,
    ) -> Result<CustomPermission, CustomAuthError> {
        let key = permission_key(identity_type_text, identity, topic)?;
        self.change(|current, records| {
            let found = current
                .permission(&key)
                .ok_or(CustomAuthError::NotFound(CustomResource::Permission))?
                .clone();
            self.registry.remove_custom_permission(&key)?;
            records.permissions.retain(|p| p.key() != key);
            Ok(found)
        })
    }

    /// `QueryCustomAuthPermission`: the permissions of the type, identity and topic given
    /// (each optional; the topic is compared as text), sorted by identity then topic.
    ///
    /// # Errors
    /// A bad `IdentityType`, the registry's.
    pub fn query_custom_permissions(
        &self,
        identity_type_text: Option<&str>,
        identity: Option<&str>,
        topic: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<CustomPermission>, CustomAuthError> {
        let kind = identity_type_text.map(identity_type).transpose()?;
        let rules = self.current_custom_rules()?;
        Ok(page.take(rules.permissions(), |permission| {
            kind.is_none_or(|kind| permission.identity_type == kind)
                && identity.is_none_or(|i| permission.identity == i)
                && topic.is_none_or(|t| permission.topic == t)
        }))
    }

    /// `AddCustomAuthConnectBlack`: `client_id` can no longer connect. Closing a connection
    /// it has open is the caller's part (the broker does it).
    ///
    /// # Errors
    /// A bad `ClientId`, [`CustomAuthError::AlreadyExists`],
    /// [`CustomAuthError::OverCapacity`], the registry's.
    pub fn add_connect_black(
        &self,
        client_id: &str,
        now_ms: u64,
    ) -> Result<ConnectBlack, CustomAuthError> {
        ClientId::parse_with(client_id, &ClientIdRules::mqtt())
            .map_err(|error| invalid("ClientId", error.to_string()))?;
        let black = ConnectBlack {
            client_id: client_id.to_owned(),
            create_time_ms: now_ms,
        };
        self.change(|current, records| {
            room_for(
                CustomResource::ConnectBlack,
                current.is_blacklisted(client_id),
                records.blacklist.len(),
                MAX_CONNECT_BLACKLIST,
            )?;
            self.registry.put_connect_black(black.clone())?;
            records.blacklist.push(black.clone());
            Ok(black)
        })
    }

    /// `DeleteCustomAuthConnectBlack`: `client_id` may connect again.
    ///
    /// # Errors
    /// [`CustomAuthError::NotFound`], the registry's.
    pub fn delete_connect_black(&self, client_id: &str) -> Result<ConnectBlack, CustomAuthError> {
        self.change(|current, records| {
            let found = current
                .black(client_id)
                .ok_or(CustomAuthError::NotFound(CustomResource::ConnectBlack))?
                .clone();
            self.registry.remove_connect_black(client_id)?;
            records.blacklist.retain(|b| b.client_id != client_id);
            Ok(found)
        })
    }

    /// `QueryCustomAuthConnectBlack`: blacklisted client ids (only `client_id`, if given),
    /// sorted.
    ///
    /// # Errors
    /// The registry's.
    pub fn query_connect_blacklist(
        &self,
        client_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ConnectBlack>, CustomAuthError> {
        let rules = self.current_custom_rules()?;
        Ok(page.take(rules.blacklist(), |black| {
            client_id.is_none_or(|c| black.client_id == c)
        }))
    }
}
