//! The rules this crate implements (SPEC.md section 2), in prose, with the
//! decisions the SPEC leaves open.

/// # Authenticating a CONNECT
///
/// A client id has the form `{GroupId}@@@{DeviceId}`, the group id starting
/// with `GID_`. The group must be registered in the [`Registry`](crate::Registry).
///
/// The MQTT Username selects one of three modes; the instance id must be the
/// broker's own ([`AuthConfig::instance_id`](crate::AuthConfig::instance_id)):
///
/// | Username | Password |
/// |---|---|
/// | `Signature\|{AccessKeyId}\|{InstanceId}` | Base64(HMAC-SHA1(key = AccessKey secret, data = client id)) |
/// | `Token\|{AccessKeyId}\|{InstanceId}` | `R\|{token}`, `W\|{token}`, `RW\|{token}`, or several pairs in any order, each type at most once |
/// | `DeviceCredential\|{DeviceAccessKeyId}\|{InstanceId}` | Base64(HMAC-SHA1(key = device secret, data = client id)) |
///
/// Checks run in this order, and the first failure decides the CONNACK code:
///
/// | Check | Failure | Code |
/// |---|---|---|
/// | username present (else anonymous mode must be on) | `AnonymousRefused` | 5 |
/// | username parses | `BadUsername` | 4 |
/// | instance id is ours | `WrongInstance` | 4 |
/// | password present | `MissingPassword` | 4 |
/// | AccessKeyId configured (signature, token) | `UnknownAccessKey` | 4 |
/// | device credential exists for this client id, key id and instance | `UnknownDeviceCredential` | 4 |
/// | signature matches | `BadSignature` | 4 |
/// | token password parses | `BadPassword` | 4 |
/// | every token exists, issued by that AccessKey on this instance | `UnknownToken` | 4 |
/// | every token neither expired nor revoked | `TokenNotValid` | 5 |
/// | every token allows what it was offered for (`R` needs read, `W` write, `RW` both) | `TokenLacksAction` | 5 |
/// | client id is `GID_{group}@@@{device}` | `BadClientId` | 2 |
/// | group registered | `GroupNotRegistered` | 5 |
/// | (registry failed at any step) | `Registry` | 3 |
///
/// The rule of thumb: credentials that are malformed or do not verify give 4
/// ("bad user name or password"); credentials that verify, or are absent,
/// but are not enough give 5 ("not authorised"). A malformed client id gives
/// 2 ("identifier rejected"), which MQTT 3.1.1 defines for exactly that. The
/// group is checked after the credentials so that an unauthenticated client
/// cannot probe which groups exist.
///
/// Anonymous mode (off by default) accepts a CONNECT without a username, with
/// any client id, and grants everything. A CONNECT that does send a username
/// is checked as above even in anonymous mode.
///
/// Expiry and revocation stop *new* connections; a connection that is
/// already up keeps its [`Grants`](crate::Grants). [`AuthMethod::Token`](crate::AuthMethod::Token)
/// lists the tokens so the broker can re-check them if it wants to.
pub mod connect {}

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
pub mod tokens {}

/// # Grants and P2P protection
///
/// A connection's [`Grants`](crate::Grants) follow from how it authenticated:
/// an AccessKey or device credential gives its configured policy (everything
/// by default); tokens give exactly their resources, `R` tokens for
/// subscribing and `W` tokens for publishing; anonymous gives everything.
///
/// A topic may be published if a granted filter matches it. A subscription
/// filter (plain, or the filter inside `$share/{group}/{filter}`) may be
/// subscribed only if one granted filter contains it entirely, that is if
/// every topic it can match is granted: `a/#` grants `a/+/b` but `a/+` does
/// not grant `a/#`.
///
/// A P2P address is `{parent}/p2p/{clientId}`. Publishing to one is how a
/// client sends P2P messages, so only the policy decides. Subscribing is
/// refused, whatever the policy, for any filter whose second level is
/// literally `p2p` and whose remaining levels are anything other than exactly
/// the subscriber's own client id: `a/p2p/{other}`, `a/p2p/+`, `a/p2p/#`,
/// `+/p2p/{other}` are all refused. A client's own address is allowed (it
/// receives its P2P messages anyway).
///
/// That leaves wildcard filters above the `p2p` level, such as `a/#` or
/// `a/+/{other}`. They are allowed, and **the broker's router must never
/// deliver a P2P topic through subscription matching**: a message published
/// to `{parent}/p2p/{target}` goes to `{target}` only, by direct lookup, and
/// is not matched against the subscription trie. With that contract no
/// filter can receive another client's P2P messages.
pub mod p2p {}

/// # OpenAPI request signatures
///
/// The broker's HTTP API accepts the two schemes the model service's SDKs
/// use; [`openapi::verify_request`](crate::openapi::verify_request) picks one
/// by what the request carries.
///
/// **ACS3-HMAC-SHA256** (header `Authorization: ACS3-HMAC-SHA256
/// Credential={AccessKeyId},SignedHeaders={a;b;c},Signature={hex}`). The
/// canonical request is the method, the path, the canonical query, the
/// signed headers as `name:value` lines (names lower case, sorted, values
/// trimmed), the signed header names joined by `;`, and the
/// `x-acs-content-sha256` value, joined by newlines. The canonical query
/// decodes each name and value of the raw query (`+` is a space) and
/// re-encodes them with RFC 3986 (only `A-Z a-z 0-9 - _ . ~` left alone, so a
/// space is `%20`), sorted. The string to sign is `ACS3-HMAC-SHA256\n` +
/// hex(SHA-256(canonical request)); the signature is hex(HMAC-SHA256(secret,
/// string to sign)). We also require: `host`, `x-acs-date`,
/// `x-acs-signature-nonce` and `x-acs-content-sha256` present; `host`,
/// `content-type` and every `x-acs-*` header signed; and
/// `x-acs-content-sha256` equal to the SHA-256 of the actual body.
///
/// **RPC HMAC-SHA1** (signature version 1.0, the `Signature` parameter).
/// Parameters come from the query and, for
/// `application/x-www-form-urlencoded` bodies, the body. Every parameter but
/// `Signature` is RFC 3986 encoded, sorted and joined as `k=v&...`; an empty
/// value (`SignatureType=`) stays. The string to sign is `METHOD&%2F&` +
/// percentEncode(that); the signature is Base64(HMAC-SHA1(key = secret + `&`,
/// string to sign)). `SignatureMethod` must be `HMAC-SHA1` and
/// `SignatureVersion` `1.0`.
///
/// In both schemes a parameter name that appears twice (across query and
/// body) is refused, a malformed `%` escape is refused, and the request's
/// date (`x-acs-date` or `Timestamp`, `YYYY-MM-DDTHH:MM:SSZ`) must be within
/// the window (15 minutes by default) of the broker's clock, either way. The
/// nonce (`x-acs-signature-nonce` or `SignatureNonce`) must not have been used
/// by an accepted request whose date is still within the window; it is
/// recorded only after the signature verified. The
/// [`NonceGuard`](crate::openapi::NonceGuard) remembers at most a configured
/// number of live nonces and refuses new requests rather than forget one.
pub mod openapi {}
