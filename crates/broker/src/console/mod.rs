//! The operator's console: a few pages and JSON endpoints under `/console` on the HTTP
//! listener, beside the OpenAPI (`http/`). It uses the core's read accessors for what it
//! shows, and runs every change through [`http::perform`](crate::http::perform), the
//! function the OpenAPI's actions go through, as the AccessKey the operator signed in with.
//!
//! ```text
//!  GET  /console/login, /console/style.css   the sign-in page (no session needed)
//!  POST /console/login                       id + secret -> session cookie, 303 /console
//!  GET  /console, /console/app.js            the console (session)
//!  GET  /console/api/overview                the last minutes of samples (session)
//!  GET  /console/api/events?group=G          live samples and status events, SSE (session)
//!  GET  /console/api/clients?q=&group=       clients, online and offline (session)
//!  POST /console/api/action                  one OpenAPI action (session + CSRF token)
//!  POST /console/logout                      ends the session (session + CSRF token)
//! ```
//!
//! Over plain HTTP every console path answers only loopback peers; the session cookie is
//! HttpOnly, SameSite=Strict, limited to `/console`, with an expiry, and Secure under HTTPS.

mod sampler;
mod session;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::Stream;
use mqgate_auth::openapi::parse_form;
use mqgate_auth::secrets_equal;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::clock::monotonic_ms;
use crate::http::{self, ApiError, Ctx, Params};
use sampler::Overview;
use session::{Session, Sessions, COOKIE};

const LOGIN_HTML: &str = include_str!("assets/login.html");
const CONSOLE_HTML: &str = include_str!("assets/console.html");
const STYLE_CSS: &str = include_str!("assets/console.css");
const APP_JS: &str = include_str!("assets/console.js");

/// Most clients one listing returns.
const MAX_LISTED: usize = 500;

/// The console's state.
struct Console {
    http: Ctx,
    sessions: Sessions,
    overview: Arc<Overview>,
}

type Shared = Arc<Console>;

/// The console's routes, and its sampler started, when it is on: `http.console`, and an
/// `[auth]` section whose AccessKeys operators sign in with. `None` otherwise.
pub(crate) fn start(http: &Ctx) -> Option<Router> {
    let settings = &http.settings;
    if !settings.console || http.access.core.is_none() || http.auth.is_none() {
        return None;
    }
    let overview = Arc::new(Overview::new());
    tokio::spawn(sampler::run(http.clone(), overview.clone()));
    let console = Arc::new(Console {
        http: http.clone(),
        sessions: Sessions::new(
            settings.console_session_ms,
            settings.console_max_failures,
            settings.console_lockout_ms,
        ),
        overview,
    });
    tracing::info!(https = http.https, "operator console at /console");
    Some(
        Router::new()
            .route("/console", get(page))
            .route("/console/", get(page))
            .route("/console/login", get(login_page).post(sign_in))
            .route("/console/style.css", get(style))
            .route("/console/app.js", get(script))
            .route("/console/logout", post(sign_out))
            .route("/console/api/overview", get(overview_json))
            .route("/console/api/events", get(events))
            .route("/console/api/clients", get(clients))
            .route("/console/api/action", post(action))
            .route("/console/{*rest}", get(unknown).post(unknown))
            .with_state(console),
    )
}

/// A response with the headers every console answer carries: no caching, no framing, a
/// content security policy that allows only the console's own script and style.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn typed(status: StatusCode, content_type: &'static str, body: impl Into<String>) -> Response {
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    secured(response)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    typed(status, "application/json; charset=utf-8", body.to_string())
}

/// A refusal as JSON `{Code, Message}`.
fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({ "Code": code, "Message": message }))
}

fn see_other(location: &'static str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    secured(response)
}

/// Text for HTML: `& < > " '` escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The value of the session cookie, if the request has one.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Whether `peer` may reach the console: any peer under HTTPS, only a loopback one over plain
/// HTTP (an IPv4 address mapped into IPv6, as a dual-stack listener reports it, is judged as
/// the IPv4 address it is).
fn admitted(https: bool, peer: IpAddr) -> bool {
    https || peer.to_canonical().is_loopback()
}

/// Why a request was not let in.
enum Denied {
    /// Plain HTTP from an address that is not loopback.
    NotLoopback,
    /// No live session.
    NoSession,
}

impl Console {
    /// The plain-HTTP loopback rule.
    fn reachable(&self, peer: SocketAddr) -> Result<(), Denied> {
        if admitted(self.http.https, peer.ip()) {
            Ok(())
        } else {
            Err(Denied::NotLoopback)
        }
    }

    /// The request's live session.
    fn session(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<Session, Denied> {
        self.reachable(peer)?;
        cookie(headers)
            .and_then(|value| self.sessions.find(&value, monotonic_ms()))
            .ok_or(Denied::NoSession)
    }

    /// The cookie that carries `value`, or that clears it (`value` empty).
    fn set_cookie(&self, value: &str) -> HeaderValue {
        let max_age = if value.is_empty() {
            0
        } else {
            self.sessions.ttl_ms() / 1000
        };
        let secure = if self.http.https { "; Secure" } else { "" };
        let text = format!(
            "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        );
        // Hex, digits and fixed text: always a valid header value.
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

impl Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::NotLoopback => refusal(
                StatusCode::FORBIDDEN,
                "Console.LoopbackOnly",
                "over plain HTTP the console answers only loopback addresses; serve HTTPS (http.tls) to reach it from elsewhere",
            ),
            Denied::NoSession => refusal(
                StatusCode::UNAUTHORIZED,
                "Console.SignInRequired",
                "sign in at /console/login",
            ),
        }
    }
}

/// The sign-in page, with `message` shown when given.
fn login_html(status: StatusCode, message: &str) -> Response {
    let notice = if message.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
            escape(message)
        )
    };
    typed(
        status,
        "text/html; charset=utf-8",
        LOGIN_HTML.replace("{{NOTICE}}", &notice),
    )
}

async fn login_page(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    match console.reachable(peer) {
        Ok(()) => login_html(StatusCode::OK, ""),
        Err(denied) => denied.into_response(),
    }
}

async fn style(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    match console.reachable(peer) {
        Ok(()) => typed(StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS),
        Err(denied) => denied.into_response(),
    }
}

/// Reads a form body (at most `http.max_body_bytes`).
async fn form(console: &Console, request: Request) -> Result<Vec<(String, String)>, Response> {
    let limit = console.http.settings.max_body_bytes;
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| {
            refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "InvalidParameter.Body",
                "the body is too large",
            )
        })?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        refusal(
            StatusCode::BAD_REQUEST,
            "InvalidParameter.Encoding",
            "the body is not UTF-8",
        )
    })?;
    parse_form(text).map_err(|_| {
        refusal(
            StatusCode::BAD_REQUEST,
            "InvalidParameter.Encoding",
            "the body is not a form",
        )
    })
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Whether `id` and `secret` are an AccessKey of `[auth]` allowed on the API. The secret is
/// compared in constant time, and against a stand-in for an unknown key.
fn credentials_valid(console: &Console, id: &str, secret: &str) -> bool {
    let Some(core) = console.http.access.core.as_ref() else {
        return false;
    };
    let allowed = console
        .http
        .auth
        .as_ref()
        .is_some_and(|auth| auth.api_allowed(id));
    let expected = core.access_key_secret(id);
    let matches = secrets_equal(
        expected.as_deref().unwrap_or("\u{0}no such key").as_bytes(),
        secret.as_bytes(),
    );
    allowed && expected.is_some() && matches
}

async fn sign_in(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if let Err(denied) = console.reachable(peer) {
        return denied.into_response();
    }
    let now = monotonic_ms();
    if !console.sessions.may_try(peer.ip(), now) {
        tracing::warn!(%peer, "console sign-in throttled");
        return login_html(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins from this address: wait a minute and try again.",
        );
    }
    let fields = match form(&console, request).await {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let id = field(&fields, "id").unwrap_or_default();
    let secret = field(&fields, "secret").unwrap_or_default();
    if !credentials_valid(&console, id, secret) {
        console.sessions.failed(peer.ip(), now);
        tracing::info!(%peer, access_key = id, "console sign-in refused");
        return login_html(
            StatusCode::UNAUTHORIZED,
            "Unknown AccessKey, wrong secret, or a key not allowed on the API.",
        );
    }
    let Some((value, _)) = console.sessions.open(id, now) else {
        return login_html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No randomness for a session: try again.",
        );
    };
    tracing::info!(%peer, access_key = id, "console sign-in");
    let mut response = see_other("/console");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, console.set_cookie(&value));
    response
}

/// The CSRF token of a write: header `x-csrf-token`, else the form field `csrf`.
fn csrf_ok(session: &Session, headers: &HeaderMap, fields: &[(String, String)]) -> bool {
    let token = headers
        .get("x-csrf-token")
        .and_then(|value| value.to_str().ok())
        .or_else(|| field(fields, "csrf"));
    token.is_some_and(|token| session.csrf_matches(token))
}

fn csrf_refused() -> Response {
    refusal(
        StatusCode::FORBIDDEN,
        "Console.CsrfToken",
        "a write must carry the session's CSRF token",
    )
}

/// A write's session, headers and form fields, once the session and its CSRF token are
/// checked; the refusal otherwise.
async fn checked_write(
    console: &Console,
    peer: SocketAddr,
    request: Request,
) -> Result<(Session, HeaderMap, Vec<(String, String)>), Response> {
    let headers = request.headers().clone();
    let session = console
        .session(peer, &headers)
        .map_err(Denied::into_response)?;
    let fields = form(console, request).await?;
    if !csrf_ok(&session, &headers, &fields) {
        return Err(csrf_refused());
    }
    Ok((session, headers, fields))
}

async fn sign_out(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (session, headers, _) = match checked_write(&console, peer, request).await {
        Ok(write) => write,
        Err(response) => return response,
    };
    if let Some(value) = cookie(&headers) {
        console.sessions.close(&value);
    }
    tracing::info!(%peer, access_key = %session.access_key_id, "console sign-out");
    let mut response = see_other("/console/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, console.set_cookie(""));
    response
}

async fn page(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match console.session(peer, &headers) {
        Ok(session) => {
            let instance = instance_id(&console);
            let html = CONSOLE_HTML
                .replace("{{CSRF}}", &escape(&session.csrf))
                .replace("{{KEY}}", &escape(&session.access_key_id))
                .replace("{{INSTANCE}}", &escape(&instance));
            typed(StatusCode::OK, "text/html; charset=utf-8", html)
        }
        Err(Denied::NoSession) => see_other("/console/login"),
        Err(denied) => denied.into_response(),
    }
}

/// `answer()` for a request with a live session; the refusal otherwise.
fn signed_in(
    console: &Console,
    peer: SocketAddr,
    headers: &HeaderMap,
    answer: impl FnOnce() -> Response,
) -> Response {
    match console.session(peer, headers) {
        Ok(_) => answer(),
        Err(denied) => denied.into_response(),
    }
}

async fn script(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    signed_in(&console, peer, &headers, || {
        typed(StatusCode::OK, "text/javascript; charset=utf-8", APP_JS)
    })
}

async fn unknown(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    signed_in(&console, peer, &headers, || {
        refusal(StatusCode::NOT_FOUND, "InvalidPath", "no such console page")
    })
}

async fn overview_json(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    signed_in(&console, peer, &headers, || {
        let history: Vec<Value> = console
            .overview
            .history()
            .iter()
            .map(sampler::Sample::to_json)
            .collect();
        json_response(StatusCode::OK, &json!({ "history": history }))
    })
}

/// The query string's parameters (an undecodable one makes the whole query empty).
fn query(request_query: Option<&str>) -> Vec<(String, String)> {
    parse_form(request_query.unwrap_or_default()).unwrap_or_default()
}

/// What the live feed is waiting on.
struct Feed {
    console: Shared,
    cookie: String,
    group: Option<String>,
    samples: tokio::sync::watch::Receiver<sampler::Sample>,
    status: tokio::sync::broadcast::Receiver<mqgate_status::StatusEvent>,
}

/// The next event of the feed; `None` once the session has ended or the broker shuts down.
async fn next_event(mut feed: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    loop {
        // The session ended (signed out, expired): so does its feed.
        feed.console.sessions.find(&feed.cookie, monotonic_ms())?;
        tokio::select! {
            changed = feed.samples.changed() => {
                changed.ok()?;
                let sample = feed.samples.borrow_and_update().to_json();
                let event = Event::default().event("sample").data(sample.to_string());
                return Some((Ok(event), feed));
            }
            received = feed.status.recv() => match received {
                Ok(status) => {
                    let wanted = feed.group.as_deref().is_none_or(|group| status.group_id() == Some(group));
                    if wanted {
                        let event = Event::default().event("status").data(status.to_json());
                        return Some((Ok(event), feed));
                    }
                }
                Err(RecvError::Lagged(lost)) => {
                    let event = Event::default().event("lagged").data(lost.to_string());
                    return Some((Ok(event), feed));
                }
                Err(RecvError::Closed) => return None,
            },
        }
    }
}

async fn events(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let headers = request.headers();
    if let Err(denied) = console.session(peer, headers) {
        return denied.into_response();
    }
    let cookie = cookie(headers).unwrap_or_default();
    let group = query(request.uri().query())
        .into_iter()
        .find(|(key, value)| key == "group" && !value.is_empty())
        .map(|(_, value)| value);
    let feed = Feed {
        samples: console.overview.watch(),
        status: console.http.core.status.subscribe(),
        console,
        cookie,
        group,
    };
    let stream = futures_util::stream::unfold(feed, next_event);
    secured(live(stream))
}

/// The feed as server-sent events, with a comment every 15 s to keep proxies from closing it.
fn live<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn clients(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if let Err(denied) = console.session(peer, request.headers()) {
        return denied.into_response();
    }
    let params = query(request.uri().query());
    let get = |name: &str| field(&params, name).filter(|value| !value.is_empty());
    let text = get("q").unwrap_or_default().to_lowercase();
    let group = get("group").map(|group| format!("{group}@@@"));
    let limit = get("limit")
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(100)
        .clamp(1, MAX_LISTED);
    let wanted = |client_id: &str| {
        group.as_deref().is_none_or(|g| client_id.starts_with(g))
            && (text.is_empty() || client_id.to_lowercase().contains(&text))
    };
    let (found, total) = console.http.core.registry.clients(wanted, limit);
    let list: Vec<Value> = found
        .into_iter()
        .map(|view| {
            let card = view.card.as_deref();
            let subscriptions = card.map_or(view.subscriptions, |card| card.subscriptions());
            json!({
                "clientId": &*view.client_id,
                "online": view.online,
                "persistent": view.persistent,
                "channelId": view.channel.map(|c| c.to_string()),
                "address": card.map(|c| c.address.clone()),
                "login": card.map(|c| c.login),
                "keepAlive": card.map(|c| c.keep_alive_s),
                "connectedAt": card.map(|c| c.connected_at_ms),
                "queued": view.queued,
                "subscriptions": subscriptions
                    .into_iter()
                    .map(|(filter, qos)| json!({ "filter": filter, "qos": qos }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "total": total, "clients": list }))
}

/// The instance the console manages (`[auth] instance_id`; empty without `[auth]`).
fn instance_id(console: &Shared) -> String {
    console
        .http
        .auth
        .as_ref()
        .map(|auth| auth.instance_id.clone())
        .unwrap_or_default()
}

/// Parameters the console sets itself, whatever the form says.
const SET_BY_CONSOLE: &[&str] = &["Version", "InstanceId", "csrf", "Signature", "AccessKeyId"];

async fn action(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (session, _, fields) = match checked_write(&console, peer, request).await {
        Ok(write) => write,
        Err(response) => return response,
    };
    let instance = instance_id(&console);
    let mut params: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(key, _)| !SET_BY_CONSOLE.contains(&key.as_str()))
        .collect();
    params.push(("Version".into(), http::VERSION.into()));
    params.push(("InstanceId".into(), instance));
    let action = field(&params, "Action").unwrap_or_default().to_owned();
    let params = Params::on_behalf_of(&session.access_key_id, params);
    let request_id = http::request_id();
    match http::perform(&console.http, params).await {
        Ok(mut answer) => {
            tracing::info!(%peer, access_key = %session.access_key_id, action, "console action");
            answer.insert("RequestId".into(), Value::String(request_id));
            json_response(StatusCode::OK, &Value::Object(answer))
        }
        Err(ApiError {
            status,
            code,
            message,
        }) => {
            tracing::info!(%peer, access_key = %session.access_key_id, action, %code, "console action refused");
            json_response(
                status,
                &json!({ "Code": code, "Message": message, "RequestId": request_id }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_admits_loopback_peers_only() {
        for (peer, loopback) in [
            ("127.0.0.1", true),
            ("127.8.9.10", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("192.0.2.7", false),
            ("::ffff:192.0.2.7", false),
            ("2001:db8::1", false),
            ("0.0.0.0", false),
        ] {
            let ip: IpAddr = peer.parse().unwrap();
            assert_eq!(admitted(false, ip), loopback, "{peer}");
            assert!(admitted(true, ip), "{peer}: anyone under HTTPS");
        }
    }

    #[test]
    fn escapes_and_cookies() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; mqgate_console=ab.cd"),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("ab.cd"));
        assert_eq!(cookie(&HeaderMap::new()), None);
    }
}
