//! What a client puts in the MQTT CONNECT Username and Password fields.

use base64::Engine as _;
use subtle::ConstantTimeEq;

/// Why a Username or Password field could not be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The username is not three `|`-separated fields.
    #[error("username must be Mode|AccessKeyId|InstanceId")]
    UsernameShape,
    /// The first username field is not `Signature`, `Token` or `DeviceCredential`.
    #[error("unknown authentication mode")]
    UnknownMode,
    /// A username field, or a token in the password, is empty.
    #[error("empty field")]
    EmptyField,
    /// The password is not UTF-8 text.
    #[error("password is not UTF-8")]
    PasswordNotText,
    /// A token password is not `TYPE|token` pairs with TYPE `R`, `W` or `RW`.
    #[error("token password must be R|token, W|token or RW|token pairs")]
    TokenPasswordShape,
    /// A token password names the same type twice.
    #[error("token type given twice")]
    RepeatedTokenType,
}

/// The three ways to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMode {
    /// `Signature|AccessKeyId|InstanceId`: password signs the client id with
    /// the AccessKey secret.
    Signature,
    /// `Token|AccessKeyId|InstanceId`: password carries tokens.
    Token,
    /// `DeviceCredential|DeviceAccessKeyId|InstanceId`: password signs the
    /// client id with the device's own secret.
    DeviceCredential,
}

/// A parsed CONNECT username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Username<'a> {
    /// How the password is to be checked.
    pub mode: AuthMode,
    /// The AccessKeyId, or the DeviceAccessKeyId for device credentials.
    pub access_key_id: &'a str,
    /// The instance the client believes it connects to.
    pub instance_id: &'a str,
}

impl<'a> Username<'a> {
    /// Parses `Mode|KeyId|InstanceId`. Mode names are case-sensitive, and no
    /// field may be empty.
    ///
    /// ```
    /// use mqgate_auth::{AuthMode, Username};
    /// let user = Username::parse("Token|AK|mqtt-test").unwrap();
    /// assert_eq!(user.mode, AuthMode::Token);
    /// assert_eq!((user.access_key_id, user.instance_id), ("AK", "mqtt-test"));
    /// assert!(Username::parse("Signature|AK").is_err());
    /// ```
    pub fn parse(username: &'a str) -> Result<Self, CredentialError> {
        let mut fields = username.split('|');
        let (Some(mode), Some(access_key_id), Some(instance_id), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(CredentialError::UsernameShape);
        };
        let mode = match mode {
            "Signature" => AuthMode::Signature,
            "Token" => AuthMode::Token,
            "DeviceCredential" => AuthMode::DeviceCredential,
            _ => return Err(CredentialError::UnknownMode),
        };
        if access_key_id.is_empty() || instance_id.is_empty() {
            return Err(CredentialError::EmptyField);
        }
        Ok(Self {
            mode,
            access_key_id,
            instance_id,
        })
    }
}

/// The tokens of a `Token` mode password: `R|t1`, `W|t2`, `RW|t3`, or several
/// such pairs (`R|t1|W|t2`) in any order, each type at most once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenPassword<'a> {
    /// The token given as `R|...`: read (subscribe) rights.
    pub read: Option<&'a str>,
    /// The token given as `W|...`: write (publish) rights.
    pub write: Option<&'a str>,
    /// The token given as `RW|...`: both.
    pub read_write: Option<&'a str>,
}

impl<'a> TokenPassword<'a> {
    /// Parses a token password.
    ///
    /// ```
    /// use mqgate_auth::TokenPassword;
    /// let tokens = TokenPassword::parse(b"W|abcd|R|123").unwrap();
    /// assert_eq!((tokens.read, tokens.write), (Some("123"), Some("abcd")));
    /// assert!(TokenPassword::parse(b"R|1|R|2").is_err());
    /// ```
    pub fn parse(password: &'a [u8]) -> Result<Self, CredentialError> {
        let text = std::str::from_utf8(password).map_err(|_| CredentialError::PasswordNotText)?;
        let mut parsed = Self::default();
        let mut fields = text.split('|');
        while let Some(kind) = fields.next() {
            let token = fields.next().ok_or(CredentialError::TokenPasswordShape)?;
            if token.is_empty() {
                return Err(CredentialError::EmptyField);
            }
            let slot = match kind {
                "R" => &mut parsed.read,
                "W" => &mut parsed.write,
                "RW" => &mut parsed.read_write,
                _ => return Err(CredentialError::TokenPasswordShape),
            };
            if slot.replace(token).is_some() {
                return Err(CredentialError::RepeatedTokenType);
            }
        }
        Ok(parsed)
    }

    /// Every token given, with whether it was offered for reading and for
    /// writing.
    pub fn tokens(&self) -> impl Iterator<Item = (&'a str, bool, bool)> {
        [
            self.read.map(|token| (token, true, false)),
            self.write.map(|token| (token, false, true)),
            self.read_write.map(|token| (token, true, true)),
        ]
        .into_iter()
        .flatten()
    }
}

/// The password a client computes in `Signature` and `DeviceCredential`
/// modes: Base64(HMAC-SHA1(key = secret, data = client id)).
///
/// ```
/// use mqgate_auth::sign_client_id;
/// assert_eq!(sign_client_id("test-secret-123", "GID_a@@@d1"), "uAPbUQftSJEDN7s5soo5uXrrCXM=");
/// ```
pub fn sign_client_id(secret: &str, client_id: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(crate::crypto::hmac_sha1(
        secret.as_bytes(),
        client_id.as_bytes(),
    ))
}

/// Whether two secrets are equal, compared in constant time (the length aside): for
/// secrets kept by the broker's own front ends, such as the operator console's sign-in
/// and session cookies.
///
/// ```
/// assert!(mqgate_auth::secrets_equal(b"s3cret", b"s3cret"));
/// assert!(!mqgate_auth::secrets_equal(b"s3cret", b"s3creT"));
/// ```
pub fn secrets_equal(expected: &[u8], given: &[u8]) -> bool {
    bool::from(expected.ct_eq(given))
}

/// Whether `password` is [`sign_client_id`]`(secret, client_id)`, compared in
/// constant time.
pub fn verify_client_id_signature(secret: &str, client_id: &str, password: &[u8]) -> bool {
    let expected = sign_client_id(secret, client_id);
    bool::from(expected.as_bytes().ct_eq(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_table() {
        use AuthMode::*;
        type Parsed<'a> = (AuthMode, &'a str, &'a str);
        let table: &[(&str, Result<Parsed, CredentialError>)] = &[
            ("Signature|AK|inst", Ok((Signature, "AK", "inst"))),
            ("Token|AK|inst", Ok((Token, "AK", "inst"))),
            (
                "DeviceCredential|DK|inst",
                Ok((DeviceCredential, "DK", "inst")),
            ),
            ("signature|AK|inst", Err(CredentialError::UnknownMode)),
            ("Password|AK|inst", Err(CredentialError::UnknownMode)),
            ("Signature|AK", Err(CredentialError::UsernameShape)),
            ("Signature|AK|inst|x", Err(CredentialError::UsernameShape)),
            ("", Err(CredentialError::UsernameShape)),
            ("Signature||inst", Err(CredentialError::EmptyField)),
            ("Token|AK|", Err(CredentialError::EmptyField)),
        ];
        for (input, expected) in table {
            let parsed = Username::parse(input)
                .map(|user| (user.mode, user.access_key_id, user.instance_id));
            assert_eq!(parsed, *expected, "{input:?}");
        }
    }

    #[test]
    fn token_password_table() {
        type Parsed<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let table: &[(&[u8], Result<Parsed, CredentialError>)] = &[
            (b"R|123", Ok((Some("123"), None, None))),
            (b"R|123|W|abcd", Ok((Some("123"), Some("abcd"), None))),
            (b"W|abcd|R|123", Ok((Some("123"), Some("abcd"), None))),
            (b"RW|t", Ok((None, None, Some("t")))),
            (b"R|a|W|b|RW|c", Ok((Some("a"), Some("b"), Some("c")))),
            (b"", Err(CredentialError::TokenPasswordShape)),
            (b"R", Err(CredentialError::TokenPasswordShape)),
            (b"R|", Err(CredentialError::EmptyField)),
            (b"R|a|W", Err(CredentialError::TokenPasswordShape)),
            (b"X|a", Err(CredentialError::TokenPasswordShape)),
            (b"r|a", Err(CredentialError::TokenPasswordShape)),
            (b"R|a|R|b", Err(CredentialError::RepeatedTokenType)),
            (b"R|\xff", Err(CredentialError::PasswordNotText)),
        ];
        for (input, expected) in table {
            let parsed = TokenPassword::parse(input).map(|t| (t.read, t.write, t.read_write));
            assert_eq!(parsed, *expected, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn signature_rejects_near_misses() {
        let good = sign_client_id("s", "GID_a@@@1");
        assert!(verify_client_id_signature(
            "s",
            "GID_a@@@1",
            good.as_bytes()
        ));
        let mut flipped = good.clone().into_bytes();
        flipped[0] ^= 1;
        assert!(!verify_client_id_signature("s", "GID_a@@@1", &flipped));
        assert!(!verify_client_id_signature(
            "s",
            "GID_a@@@1",
            &good.as_bytes()[1..]
        ));
        assert!(!verify_client_id_signature("s", "GID_a@@@1", b""));
    }

    proptest::proptest! {
        // Secrets are printable: HMAC pads short keys with zero bytes, so
        // "k" and "k\0" are the same key by definition of HMAC.
        #[test]
        fn a_password_verifies_only_for_its_secret_and_client(
            secret in "[ -~]{0,40}", other_secret in "[ -~]{0,40}",
            client in ".{1,40}", other_client in ".{1,40}",
        ) {
            let password = sign_client_id(&secret, &client);
            proptest::prop_assert!(verify_client_id_signature(&secret, &client, password.as_bytes()));
            if other_secret != secret {
                proptest::prop_assert!(!verify_client_id_signature(&other_secret, &client, password.as_bytes()));
            }
            if other_client != client {
                proptest::prop_assert!(!verify_client_id_signature(&secret, &other_client, password.as_bytes()));
            }
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = TokenPassword::parse(&bytes);
            let _ = Username::parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
