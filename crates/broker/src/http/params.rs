//! [`Params`]: the parameters of an action (a verified request's query and form body,
//! decoded by mqgate-auth, or the operator console's form) and the action and version, from
//! the `x-acs-*` headers or the parameters.

use mqgate_auth::openapi::VerifiedRequest;

use super::error::ApiError;
use super::VERSION;

/// Most entries a list parameter (`ClientIdList.N`) may have.
pub(crate) const MAX_LIST: usize = 100;

/// An action's parameters, and who asks for it.
#[derive(Debug)]
pub(crate) struct Params {
    /// The AccessKey the action runs as: the one that signed the request, or the one the
    /// console's operator signed in with.
    access_key_id: String,
    /// Decoded parameters, in the order received.
    params: Vec<(String, String)>,
    /// `x-acs-action`, if the request had the header.
    pub(crate) action_header: Option<String>,
    /// `x-acs-version`, if the request had the header.
    pub(crate) version_header: Option<String>,
}

impl Params {
    /// The parameters of a request whose signature verified.
    pub(crate) fn signed(
        verified: VerifiedRequest,
        action_header: Option<String>,
        version_header: Option<String>,
    ) -> Self {
        Params {
            access_key_id: verified.access_key_id,
            params: verified.params,
            action_header,
            version_header,
        }
    }

    /// The parameters of an action asked for as `access_key_id` by other means than a
    /// signed request (the operator console, once its session is checked).
    pub(crate) fn on_behalf_of(access_key_id: &str, params: Vec<(String, String)>) -> Self {
        Params {
            access_key_id: access_key_id.to_owned(),
            params,
            action_header: None,
            version_header: None,
        }
    }

    /// The AccessKeyId the action runs as.
    pub(crate) fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The action: the `x-acs-action` header, else the `Action` parameter.
    pub(crate) fn action(&self) -> Result<String, ApiError> {
        match (&self.action_header, self.optional("Action")) {
            (Some(header), _) => Ok(header.clone()),
            (None, Some(param)) => Ok(param.to_owned()),
            (None, None) => Err(ApiError::missing("Action")),
        }
    }

    /// The version must be 2020-04-20 (header `x-acs-version` or parameter `Version`).
    pub(crate) fn check_version(&self) -> Result<(), ApiError> {
        let version = self
            .version_header
            .as_deref()
            .or_else(|| self.optional("Version"))
            .ok_or_else(|| ApiError::missing("Version"))?;
        if version == VERSION {
            Ok(())
        } else {
            Err(ApiError::invalid(
                "Version",
                format!("only {VERSION} is served"),
            ))
        }
    }

    /// A parameter's value; `None` when absent or empty.
    pub(crate) fn optional(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(param, _)| param == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// A parameter that must be present and non-empty (else 400 `MissingParameter.{name}`).
    pub(crate) fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.optional(name).ok_or_else(|| ApiError::missing(name))
    }

    /// A list sent as `{name}.1`, `{name}.2`, ... (the RPC flattening of the SDKs), in index
    /// order; at least one entry and at most [`MAX_LIST`].
    pub(crate) fn list(&self, name: &str) -> Result<Vec<&str>, ApiError> {
        let mut entries = Vec::new();
        for (key, value) in &self.params {
            let Some(index) = key
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('.'))
            else {
                continue;
            };
            let index: usize = index
                .parse()
                .map_err(|_| ApiError::invalid(name, format!("bad index in {key:?}")))?;
            entries.push((index, value.as_str()));
        }
        if entries.is_empty() {
            return Err(ApiError::missing(name));
        }
        if entries.len() > MAX_LIST {
            return Err(ApiError::invalid(
                name,
                format!("more than {MAX_LIST} entries"),
            ));
        }
        entries.sort_unstable_by_key(|(index, _)| *index);
        Ok(entries.into_iter().map(|(_, value)| value).collect())
    }

    /// A whole number parameter, `default` when absent.
    pub(crate) fn number(&self, name: &str, default: u64) -> Result<u64, ApiError> {
        match self.optional(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| ApiError::invalid(name, "not a whole number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqgate_auth::openapi::SignatureScheme;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let verified = VerifiedRequest {
            access_key_id: "AK".into(),
            scheme: SignatureScheme::RpcHmacSha1,
            params: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        Params::signed(verified, None, None)
    }

    #[test]
    fn lists_come_in_index_order() {
        let p = params(&[("L.2", "b"), ("L.10", "c"), ("L.1", "a"), ("Other", "x")]);
        assert_eq!(p.list("L").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            p.list("Missing").unwrap_err().code,
            "MissingParameter.Missing"
        );
        let bad = params(&[("L.x", "a")]);
        assert_eq!(bad.list("L").unwrap_err().code, "InvalidParameter.L");
        let many: Vec<(String, String)> = (0..=MAX_LIST)
            .map(|i| (format!("L.{i}"), "v".into()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(params(&many).list("L").is_err());
    }

    proptest::proptest! {
        /// Whatever the names and values, the list and number readers answer without
        /// panicking, and a list holds only values of `{name}.N` parameters.
        #[test]
        fn readers_never_panic(pairs in proptest::collection::vec(("(L|L\\.[0-9]{0,22}|L\\..{0,4}|.{0,6})", ".{0,8}"), 0..20)) {
            let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let p = params(&borrowed);
            if let Ok(values) = p.list("L") {
                for value in values {
                    proptest::prop_assert!(pairs.iter().any(|(k, v)| v == value && k.starts_with("L.")));
                }
            }
            let _ = p.number("L", 0);
            let _ = p.action();
            let _ = p.check_version();
        }
    }

    #[test]
    fn empty_is_missing_and_numbers_are_checked() {
        let p = params(&[("A", ""), ("N", "12"), ("B", "x1")]);
        assert_eq!(p.required("A").unwrap_err().code, "MissingParameter.A");
        assert_eq!(p.number("N", 0).unwrap(), 12);
        assert_eq!(p.number("Absent", 7).unwrap(), 7);
        assert_eq!(p.number("B", 0).unwrap_err().code, "InvalidParameter.B");
        assert_eq!(p.action().unwrap_err().code, "MissingParameter.Action");
        assert_eq!(
            p.check_version().unwrap_err().code,
            "MissingParameter.Version"
        );
    }
}
