//! Why a CONNECT was refused, and the CONNACK return code that says so.

use crate::manage::GroupCheck;
use crate::{CredentialError, RegistryError};

/// The MQTT 3.1.1 CONNACK return codes authentication can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnackCode {
    /// 2: the client id is not of the required `GID_...@@@...` form.
    IdentifierRejected = 2,
    /// 3: the registry could not be read; the client may retry.
    ServerUnavailable = 3,
    /// 4: the username or password is malformed or does not verify.
    BadUsernameOrPassword = 4,
    /// 5: the credentials verified (or were absent) but do not allow a connection.
    NotAuthorized = 5,
}

impl ConnackCode {
    /// The byte that goes in the CONNACK.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The detailed reason behind an [`AuthFailure`], for the log. Never send it
/// to the client: the CONNACK code is all it gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureReason {
    /// No username, and anonymous connections are off.
    #[error("anonymous connections are not allowed")]
    AnonymousRefused,
    /// A username but no password.
    #[error("password missing")]
    MissingPassword,
    /// The username could not be parsed.
    #[error("bad username: {0}")]
    BadUsername(CredentialError),
    /// The token password could not be parsed.
    #[error("bad token password: {0}")]
    BadPassword(CredentialError),
    /// The username names an instance other than this broker's.
    #[error("username names instance {0:?}, not this broker's")]
    WrongInstance(String),
    /// The AccessKeyId is not configured.
    #[error("unknown AccessKeyId {0:?}")]
    UnknownAccessKey(String),
    /// No device credential for this client id with this DeviceAccessKeyId.
    #[error("no matching device credential")]
    UnknownDeviceCredential,
    /// The signature password does not match the client id under the secret.
    #[error("password signature does not match")]
    BadSignature,
    /// A token is unknown, or was issued by another AccessKey or instance.
    #[error("unknown token")]
    UnknownToken,
    /// A token expired or was revoked.
    #[error("token expired or revoked")]
    TokenNotValid,
    /// A token was offered for reading or writing but does not allow it.
    #[error("token does not allow the action it was offered for")]
    TokenLacksAction,
    /// The client id is on the connect blacklist.
    #[error("client id is on the connect blacklist")]
    ConnectBlacklisted,
    /// The username belongs only to `CLIENT` custom identities of other client ids.
    #[error("custom identity is bound to another client id")]
    CustomIdentityOtherClient,
    /// The client id is not `GID_{group}@@@{device}`.
    #[error("bad client id: {0}")]
    BadClientId(mqgate_topic::ClientIdError),
    /// The client id's group is not registered.
    #[error("group {0:?} is not registered")]
    GroupNotRegistered(String),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl FailureReason {
    /// The CONNACK code for this reason: credentials that are malformed or do
    /// not verify give 4, verified (or absent) credentials that are not
    /// enough give 5, a malformed client id 2, a registry failure 3.
    pub fn connack_code(&self) -> ConnackCode {
        match self {
            Self::AnonymousRefused
            | Self::ConnectBlacklisted
            | Self::TokenNotValid
            | Self::TokenLacksAction
            | Self::GroupNotRegistered(_) => ConnackCode::NotAuthorized,
            Self::MissingPassword
            | Self::BadUsername(_)
            | Self::BadPassword(_)
            | Self::WrongInstance(_)
            | Self::UnknownAccessKey(_)
            | Self::UnknownDeviceCredential
            | Self::BadSignature
            | Self::CustomIdentityOtherClient
            | Self::UnknownToken => ConnackCode::BadUsernameOrPassword,
            Self::BadClientId(_) => ConnackCode::IdentifierRejected,
            Self::Registry(_) => ConnackCode::ServerUnavailable,
        }
    }
}

/// A refused CONNECT: the code to send and the reason to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection refused (CONNACK {}): {reason}", code.as_u8())]
pub struct AuthFailure {
    /// The CONNACK return code.
    pub code: ConnackCode,
    /// Why, for the log.
    pub reason: FailureReason,
}

impl From<FailureReason> for AuthFailure {
    fn from(reason: FailureReason) -> Self {
        Self {
            code: reason.connack_code(),
            reason,
        }
    }
}

impl From<RegistryError> for AuthFailure {
    fn from(error: RegistryError) -> Self {
        FailureReason::Registry(error).into()
    }
}

impl From<GroupCheck> for AuthFailure {
    fn from(check: GroupCheck) -> Self {
        match check {
            GroupCheck::BadClientId(error) => FailureReason::BadClientId(error),
            GroupCheck::NotRegistered(group) => FailureReason::GroupNotRegistered(group),
            GroupCheck::Registry(error) => FailureReason::Registry(error),
        }
        .into()
    }
}
