//! [`ApiError`]: every refusal as HTTP 4xx/5xx with JSON `{Code, Message, RequestId}`, the
//! shape the SDKs turn into their `ClientException` (4xx) or `ServerException` (5xx).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use axum::response::Response;
use mqgate_auth::openapi::SignatureError;
use mqgate_auth::{ManageError, RegistryError};
use serde_json::json;

/// A refused API request.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: Cow<'static, str>,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 400 `MissingParameter.{name}`.
    pub(crate) fn missing(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("MissingParameter.{name}"),
            format!("the parameter {name} is required"),
        )
    }

    /// 400 `InvalidParameter.{name}`.
    pub(crate) fn invalid(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("InvalidParameter.{name}"),
            format!("the parameter {name} is invalid: {why}"),
        )
    }

    /// 404 `{name}.NotFound`.
    pub(crate) fn not_found(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("{name}.NotFound"),
            why.to_string(),
        )
    }

    pub(crate) fn into_response_with(self, request_id: &str) -> Response {
        let body = json!({
            "Code": self.code,
            "Message": self.message,
            "RequestId": request_id,
        });
        super::json(self.status, &body, request_id)
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        tracing::error!(%error, "registry failed during an API request");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the registry is unavailable; try again",
        )
    }
}

/// Signature problems, with the codes the model service uses where it has one.
impl From<SignatureError> for ApiError {
    fn from(error: SignatureError) -> Self {
        use SignatureError as E;
        let message = error.to_string();
        let (status, code): (StatusCode, Cow<'static, str>) = match &error {
            E::NotSigned => (StatusCode::BAD_REQUEST, "MissingParameter.Signature".into()),
            E::BadPercentEncoding | E::BadFormBody => {
                (StatusCode::BAD_REQUEST, "InvalidParameter.Encoding".into())
            }
            E::DuplicateParameter(name) => (
                StatusCode::BAD_REQUEST,
                format!("InvalidParameter.{name}").into(),
            ),
            E::MissingParameter(name) => (
                StatusCode::BAD_REQUEST,
                format!("MissingParameter.{name}").into(),
            ),
            E::MissingHeader(name) => (
                StatusCode::BAD_REQUEST,
                format!("MissingHeader.{name}").into(),
            ),
            E::BadAuthorization(_) | E::UnsignedHeader(_) => {
                (StatusCode::BAD_REQUEST, "InvalidAuthorization".into())
            }
            E::UnsupportedMethod(_) => (
                StatusCode::BAD_REQUEST,
                "InvalidParameter.SignatureMethod".into(),
            ),
            E::ContentHashMismatch => (
                StatusCode::BAD_REQUEST,
                "InvalidParameter.x-acs-content-sha256".into(),
            ),
            E::BadTimestamp(_) => (StatusCode::BAD_REQUEST, "InvalidTimeStamp.Format".into()),
            E::DateOutOfWindow { .. } => {
                (StatusCode::BAD_REQUEST, "InvalidTimeStamp.Expired".into())
            }
            E::BadNonce => (
                StatusCode::BAD_REQUEST,
                "InvalidParameter.SignatureNonce".into(),
            ),
            E::NonceReplayed => (StatusCode::BAD_REQUEST, "SignatureNonceUsed".into()),
            E::NonceStoreFull => (StatusCode::SERVICE_UNAVAILABLE, "Throttling".into()),
            E::UnknownAccessKey(_) => (StatusCode::NOT_FOUND, "InvalidAccessKeyId.NotFound".into()),
            E::SignatureMismatch => (StatusCode::BAD_REQUEST, "SignatureDoesNotMatch".into()),
        };
        Self::new(status, code, message)
    }
}

/// Token and device-credential refusals, each naming the parameter at fault.
impl From<ManageError> for ApiError {
    fn from(error: ManageError) -> Self {
        use ManageError as E;
        match error {
            E::NoResources | E::TooManyResources { .. } | E::BadResource { .. } => {
                Self::invalid("Resources", error)
            }
            E::ResourceNotGranted(_) => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden.Resources",
                error.to_string(),
            ),
            E::ExpiryTooSoon { .. } => Self::invalid("ExpireTime", error),
            E::UnknownToken => Self::invalid("Token", error),
            E::BadClientId(_) | E::GroupNotRegistered(_) => Self::invalid("ClientId", error),
            E::UnknownDeviceCredential(_) => Self::not_found("DeviceCredential", error),
            E::UnknownAccessKey(_) => Self::new(
                StatusCode::NOT_FOUND,
                "InvalidAccessKeyId.NotFound",
                error.to_string(),
            ),
            E::RandomUnavailable(_) => {
                tracing::error!(%error, "cannot issue a secret");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "random generator unavailable",
                )
            }
            E::Registry(error) => error.into(),
        }
    }
}

/// A request id in the model service's shape (a UUID, upper case): random when the OS
/// generator answers, else a per-process counter.
pub(crate) fn request_id() -> String {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let n = FALLBACK.fetch_add(1, Ordering::Relaxed);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_shaped_and_distinct() {
        let a = request_id();
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_ne!(a, request_id());
    }
}
