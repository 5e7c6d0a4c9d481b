//! Logins: the [`Authenticator`] a connection asks, and the cloud SDKs' credential format.
//!
//! The SDKs log in with SASL PLAIN:
//!
//! - user name: Base64 of `0:{instanceId}:{accessKeyId}`, or `0:{instanceId}:{accessKeyId}:{stsToken}`
//!   with a temporary token;
//! - password: Base64 of HMAC-SHA1(key = AccessKey secret, data = `ts`), where `ts` is a
//!   decimal epoch-milliseconds string the client also sends as the client property
//!   `signKey`.
//!
//! The Java SDK keeps the same `ts` across reconnects, so its age proves nothing; the HMAC
//! proves the secret. [`SdkAuthenticator`] checks exactly that.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::table::{FieldTable, FieldValue};

/// What a client presented at login.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    /// The SASL mechanism (always `PLAIN` here: the only one offered).
    pub mechanism: &'a str,
    /// The user name (PLAIN's authentication identity).
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
    /// The client properties of `connection.start-ok`.
    pub client_properties: &'a FieldTable,
}

/// Why a login was refused; the text goes to the client in `connection.close` (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Decides logins. A connection calls it once, on `connection.start-ok`.
pub trait Authenticator {
    /// Who a successful login is; [`Connection::principal`](crate::Connection::principal)
    /// returns it afterwards.
    type Principal;

    /// Accepts or refuses a login.
    fn authenticate(&self, login: &Login<'_>) -> Result<Self::Principal, Refusal>;
}

/// The identity in a cloud SDK user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkUser {
    /// The instance the client addresses.
    pub instance_id: String,
    /// The AccessKey id.
    pub access_key_id: String,
    /// The temporary (STS) token, when the client logged in with one.
    pub security_token: Option<String>,
}

/// Why an SDK credential is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdkAuthError {
    /// The user name is not Base64 of UTF-8 text.
    #[error("user name is not Base64 text")]
    NotBase64,
    /// The decoded user name is not `0:instance:accessKeyId[:token]`.
    #[error("user name is not 0:instanceId:accessKeyId[:token]")]
    BadUserName,
    /// The client properties carry no `signKey` (text).
    #[error("client property signKey missing")]
    MissingSignKey,
    /// No secret is known for this AccessKey id (or the instance does not match).
    #[error("unknown access key")]
    UnknownAccessKey,
    /// The password is not the HMAC of `signKey` under the secret.
    #[error("signature mismatch")]
    BadSignature,
}

impl SdkUser {
    /// Parses an SDK user name.
    pub fn parse(username: &str) -> Result<Self, SdkAuthError> {
        let raw = STANDARD
            .decode(username.trim())
            .map_err(|_| SdkAuthError::NotBase64)?;
        let text = String::from_utf8(raw).map_err(|_| SdkAuthError::NotBase64)?;
        let mut parts = text.splitn(4, ':');
        let (Some("0"), Some(instance), Some(ak)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SdkAuthError::BadUserName);
        };
        if instance.is_empty() || ak.is_empty() {
            return Err(SdkAuthError::BadUserName);
        }
        let security_token = match parts.next() {
            None => None,
            Some("") => return Err(SdkAuthError::BadUserName),
            Some(t) => Some(t.to_owned()),
        };
        Ok(Self {
            instance_id: instance.to_owned(),
            access_key_id: ak.to_owned(),
            security_token,
        })
    }

    /// The user name an SDK sends for this identity.
    pub fn username(&self) -> String {
        let mut s = format!("0:{}:{}", self.instance_id, self.access_key_id);
        if let Some(t) = &self.security_token {
            s.push(':');
            s.push_str(t);
        }
        STANDARD.encode(s)
    }
}

/// The password an SDK sends: Base64 of HMAC-SHA1(`secret`, `sign_key`), the same signature
/// the MQTT login's signature mode uses ([`mqgate_auth::sign_client_id`]) over another text.
pub fn sdk_password(secret: &str, sign_key: &str) -> String {
    mqgate_auth::sign_client_id(secret, sign_key)
}

/// Checks an SDK password in constant time.
pub fn verify_sdk_password(secret: &str, sign_key: &str, password: &str) -> bool {
    mqgate_auth::verify_client_id_signature(secret, sign_key, password.trim().as_bytes())
}

/// The `signKey` client property, as text (a long string, as both SDKs send it).
pub fn sign_key(client_properties: &FieldTable) -> Option<&str> {
    client_properties
        .get("signKey")
        .and_then(FieldValue::as_str)
}

/// The cloud SDK login: parses the user name, finds the AccessKey secret with `lookup` and
/// checks the password against the `signKey` client property.
///
/// `lookup(user)` returns the secret of `user.access_key_id` if that key may use
/// `user.instance_id` (and its token, if any, is valid), or `None`.
pub struct SdkAuthenticator<F> {
    lookup: F,
}

impl<F> SdkAuthenticator<F>
where
    F: Fn(&SdkUser) -> Option<String>,
{
    /// An authenticator over a secret lookup.
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// Checks one login; the error says which part failed (log it, do not send it: the
    /// client is told only that the login was refused).
    pub fn check(&self, login: &Login<'_>) -> Result<SdkUser, SdkAuthError> {
        let user = SdkUser::parse(login.username)?;
        let ts = sign_key(login.client_properties).ok_or(SdkAuthError::MissingSignKey)?;
        let secret = (self.lookup)(&user).ok_or(SdkAuthError::UnknownAccessKey)?;
        if verify_sdk_password(&secret, ts, login.password) {
            Ok(user)
        } else {
            Err(SdkAuthError::BadSignature)
        }
    }
}

impl<F> Authenticator for SdkAuthenticator<F>
where
    F: Fn(&SdkUser) -> Option<String>,
{
    type Principal = SdkUser;

    fn authenticate(&self, login: &Login<'_>) -> Result<SdkUser, Refusal> {
        self.check(login).map_err(|_| {
            Refusal(format!(
                "Login was refused using authentication mechanism {}",
                login.mechanism
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2202_vector() {
        // RFC 2202's HMAC-SHA1 test case 2, effcdf6ae5eb2fa2d27416d5f184df9c259a7c79, in Base64.
        assert_eq!(
            sdk_password("Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn user_names_parse_and_round_trip() {
        let u = SdkUser::parse(&STANDARD.encode("0:post-cn-abc:LTAIkey")).unwrap();
        assert_eq!(u.instance_id, "post-cn-abc");
        assert_eq!(u.access_key_id, "LTAIkey");
        assert_eq!(u.security_token, None);
        assert_eq!(SdkUser::parse(&u.username()).unwrap(), u);
        let t = SdkUser::parse(&STANDARD.encode("0:i:ak:tok:with:colons")).unwrap();
        assert_eq!(t.security_token.as_deref(), Some("tok:with:colons"));
        for bad in ["1:i:ak", "0:i", "0::ak", "0:i:", "0:i:ak:", ""] {
            assert_eq!(
                SdkUser::parse(&STANDARD.encode(bad)),
                Err(SdkAuthError::BadUserName),
                "{bad:?}"
            );
        }
        assert_eq!(SdkUser::parse("%%%"), Err(SdkAuthError::NotBase64));
    }

    #[test]
    fn password_checks() {
        let p = sdk_password("secret", "1700000000000");
        assert!(verify_sdk_password("secret", "1700000000000", &p));
        assert!(!verify_sdk_password("secret", "1700000000001", &p));
        assert!(!verify_sdk_password("Secret", "1700000000000", &p));
        assert!(!verify_sdk_password(
            "secret",
            "1700000000000",
            "not base64!"
        ));
        assert!(!verify_sdk_password("secret", "1700000000000", ""));
    }

    #[test]
    fn authenticator_reports_the_failing_part() {
        let auth = SdkAuthenticator::new(|u: &SdkUser| {
            (u.access_key_id == "ak" && u.instance_id == "inst").then(|| "sk".to_owned())
        });
        let props = FieldTable::new().with("signKey", FieldValue::long_str("42"));
        let user = STANDARD.encode("0:inst:ak");
        let good = sdk_password("sk", "42");
        fn login<'a>(username: &'a str, password: &'a str, props: &'a FieldTable) -> Login<'a> {
            Login {
                mechanism: "PLAIN",
                username,
                password,
                client_properties: props,
            }
        }
        let empty = FieldTable::new();
        assert!(auth.check(&login(&user, &good, &props)).is_ok());
        assert_eq!(
            auth.check(&login(&user, &good, &empty)),
            Err(SdkAuthError::MissingSignKey)
        );
        assert_eq!(
            auth.check(&login(&STANDARD.encode("0:other:ak"), &good, &props)),
            Err(SdkAuthError::UnknownAccessKey)
        );
        assert_eq!(
            auth.check(&login(&user, &sdk_password("wrong", "42"), &props)),
            Err(SdkAuthError::BadSignature)
        );
        assert!(auth.authenticate(&login(&user, "x", &props)).is_err());
    }
}
