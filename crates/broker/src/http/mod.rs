//! The HTTP API, on its own listener: the model service's OpenAPI (version 2020-04-20, RPC
//! style) so its official SDKs work unchanged, plus `GET /metrics` and `GET /healthz`.
//!
//! ```text
//!  POST|GET /  ─▶ read body (bounded) ─▶ signature (ACS3-HMAC-SHA256 or RPC HMAC-SHA1,
//!                 mqgate-auth) ─▶ Action / Version / InstanceId ─▶ one action
//!                 ─▶ 200 {…, "RequestId"}  or  4xx/5xx {"Code", "Message", "RequestId"}
//!  GET /metrics ─▶ Prometheus text        GET /healthz ─▶ "ok" (503 while shutting down),
//!                                         with `[cluster]` also RocketMQ's state and the peers
//! ```
//!
//! Handlers never hold a lock across an `.await`; `SendMessage` publishes through the
//! router exactly like [`BrokerHandle::publish`](crate::BrokerHandle::publish).

mod amqp_queues;
mod cluster;
mod custom_auth;
mod devices;
mod error;
mod groups;
mod listener;
mod messages;
mod metrics;
mod params;
mod sessions;
mod signature;
mod tokens;
mod trace;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::serve::ListenerExt as _;
use axum::Router;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

use crate::auth::{Access, CoreAuth};
use crate::bridge::Bridge;
use crate::cluster::Cluster;
use crate::config::{AuthSettings, HttpSettings};
use crate::core::Core;
use crate::{BrokerConfig, BrokerError};
pub(crate) use error::{request_id, ApiError};
pub(crate) use params::Params;

/// The API version the SDKs send.
pub(crate) const VERSION: &str = "2020-04-20";

/// What a successful action answers, before `RequestId` is added.
pub(crate) type Answer = Map<String, Value>;

/// The HTTP listener, bound, with its TLS acceptor when it serves HTTPS.
pub(crate) struct Bound {
    pub(crate) listener: TcpListener,
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Binds the HTTP listener, if enabled; with `http.tls`, loads the certificate and key of
/// `[listeners.tls]` for it.
///
/// # Errors
/// The address cannot be bound; `http.tls` without `[listeners.tls]`; the PEM files do not
/// load.
pub(crate) async fn bind(config: &BrokerConfig) -> Result<Option<Bound>, BrokerError> {
    if !config.http.enabled {
        return Ok(None);
    }
    let tls = match (config.http.tls, &config.listeners.tls) {
        (false, _) => None,
        (true, Some(files)) => Some(crate::transport::tls::acceptor(files)?),
        (true, None) => {
            return Err(BrokerError::Tls(
                "http.tls is on but [listeners.tls] gives no certificate".into(),
            ))
        }
    };
    let addr = config.http.listen;
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        BrokerError::Io(std::io::Error::new(
            e.kind(),
            format!("http listener on {addr}: {e}"),
        ))
    })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, "HTTP API listening");
    Ok(Some(Bound { listener, tls }))
}

/// What the HTTP API works with.
pub(crate) struct HttpCtx {
    pub(crate) core: Arc<Core>,
    pub(crate) access: Arc<Access>,
    pub(crate) bridge: Option<Arc<Bridge>>,
    /// This node's part of the cluster, with `[cluster]`.
    pub(crate) cluster: Option<Arc<Cluster>>,
    pub(crate) settings: HttpSettings,
    pub(crate) auth: Option<AuthSettings>,
    /// The listener serves HTTPS.
    pub(crate) https: bool,
    /// The cloud SDK endpoint's queues, when it is served: their depths on `/metrics`.
    pub(crate) amqp_queues: Option<Arc<crate::amqp::queue::Queues>>,
}

/// The handlers' state.
pub(crate) type Ctx = Arc<HttpCtx>;

/// The API's routes: `/` (the OpenAPI actions), `/metrics`, `/healthz`, and a 404 for
/// any other path. Other services add theirs to it before [`serve`].
pub(crate) fn routes(ctx: Ctx) -> Router {
    Router::new()
        .route("/", any(rpc))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(metrics::healthz))
        .fallback(not_found)
        .with_state(ctx)
}

/// Serves `app` on the bound listener until the broker shuts down. Handlers may read the
/// peer's address (`ConnectInfo<SocketAddr>`).
pub(crate) async fn serve(bound: Bound, app: Router, ctx: Ctx) {
    let mut shutdown = ctx.core.shutdown.clone();
    let settings = &ctx.settings;
    let (max_connections, idle) = (
        settings.max_connections,
        std::time::Duration::from_millis(settings.idle_timeout_ms.max(1)),
    );
    let stopped = async move {
        let _ = shutdown.wait_for(|down| *down).await;
    };
    // `tap_io` only so the peer's address reaches the handlers (`ConnectInfo`).
    let listener =
        listener::Bounded::new(bound.listener, max_connections, idle, bound.tls).tap_io(|_| {});
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(%error, "HTTP API stopped");
    }
}

async fn not_found(State(ctx): State<Ctx>) -> Response {
    count(&ctx, true);
    ApiError::new(
        StatusCode::NOT_FOUND,
        "InvalidPath",
        "only /, /metrics and /healthz exist",
    )
    .into_response_with(&error::request_id())
}

/// One OpenAPI call: every answer is JSON with a `RequestId`, errors included.
async fn rpc(State(ctx): State<Ctx>, request: Request) -> Response {
    let request_id = error::request_id();
    let outcome = call(&ctx, request).await;
    count(&ctx, outcome.is_err());
    match outcome {
        Ok(mut answer) => {
            answer.insert("RequestId".into(), Value::String(request_id.clone()));
            json(StatusCode::OK, &Value::Object(answer), &request_id)
        }
        Err(error) => {
            tracing::info!(code = %error.code, message = %error.message, %request_id, "API request refused");
            error.into_response_with(&request_id)
        }
    }
}

fn count(ctx: &HttpCtx, failed: bool) {
    let metrics = &ctx.core.metrics;
    metrics.api_requests.fetch_add(1, Ordering::Relaxed);
    if failed {
        metrics.api_errors.fetch_add(1, Ordering::Relaxed);
    }
}

async fn call(ctx: &Ctx, request: Request) -> Result<Answer, ApiError> {
    let auth = registries(ctx)?;
    let params = signature::verified(ctx, &auth, request).await?;
    perform(ctx, params).await
}

/// The AccessKeys and registries of `[auth]`; 403 `Forbidden.NoAccessKeys` without it.
fn registries(ctx: &HttpCtx) -> Result<Arc<CoreAuth>, ApiError> {
    ctx.access.core.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden.NoAccessKeys",
            "the broker has no [auth] section: no AccessKey can sign a request",
        )
    })
}

/// Runs the action `params` name, as its AccessKey, after the checks every caller gets:
/// version, instance, then the action's own parameters. The OpenAPI calls it once a
/// request's signature verified; the operator console once its session and CSRF token are
/// checked, so the console can do nothing the API would refuse.
pub(crate) async fn perform(ctx: &Ctx, params: Params) -> Result<Answer, ApiError> {
    let auth = registries(ctx)?;
    if !ctx
        .auth
        .as_ref()
        .is_some_and(|s| s.api_allowed(params.access_key_id()))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden.AccessKey",
            format!("AccessKey {} may not use the API", params.access_key_id()),
        ));
    }
    let action = params.action()?;
    params.check_version()?;
    let instance = params.required("InstanceId")?;
    if instance != auth.config().instance_id {
        return Err(ApiError::invalid("InstanceId", "no such instance"));
    }
    match action.as_str() {
        "ListAmqpQueues" => return amqp_queues::list(ctx),
        "ListClusterNodes" => return cluster::list(ctx),
        "ListClusterNodeClients" => return cluster::clients(ctx, &params),
        "DeleteAmqpQueue" => {
            let name = params.required("Name")?;
            return amqp_queues::delete(ctx, name, params.access_key_id()).await;
        }
        _ => {}
    }
    if action == "SendMessage" || action == "CloseConnection" {
        let api = Api {
            ctx,
            core: &auth,
            params: &params,
        };
        return if action == "SendMessage" {
            messages::send(&api).await
        } else {
            sessions::close(&api).await
        };
    }
    // The other actions read or write the registries, whose writes commit to the store
    // (an fsync with redb), or read the trace log's files: off the runtime's workers.
    let ctx = ctx.clone();
    let work = tokio::task::spawn_blocking(move || {
        let api = Api {
            ctx: &ctx,
            core: &auth,
            params: &params,
        };
        dispatch(&api, &action)
    });
    work.await.unwrap_or_else(|error| {
        tracing::error!(%error, "API action task failed");
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the action did not complete",
        ))
    })
}

/// Runs one registry or session action.
fn dispatch(api: &Api<'_>, action: &str) -> Result<Answer, ApiError> {
    match action {
        "QuerySessionByClientId" => sessions::query(api),
        "BatchQuerySessionByClientIds" => sessions::batch_query(api),
        "ApplyToken" => tokens::apply(api),
        "QueryToken" => tokens::query(api),
        "RevokeToken" => tokens::revoke(api),
        "RegisterDeviceCredential" => devices::register(api),
        "GetDeviceCredential" => devices::get(api),
        "RefreshDeviceCredential" => devices::refresh(api),
        "UnRegisterDeviceCredential" => devices::unregister(api),
        "ListDeviceCredentialClientId" => devices::list(api),
        "CreateGroupId" => groups::create(api),
        "DeleteGroupId" => groups::delete(api),
        "ListGroupId" => groups::list(api),
        "AddCustomAuthIdentity" => custom_auth::add_identity(api),
        "UpdateCustomAuthIdentity" => custom_auth::update_identity(api),
        "DeleteCustomAuthIdentity" => custom_auth::delete_identity(api),
        "QueryCustomAuthIdentity" => custom_auth::query_identities(api),
        "AddCustomAuthPermission" => custom_auth::add_permission(api),
        "UpdateCustomAuthPermission" => custom_auth::update_permission(api),
        "DeleteCustomAuthPermission" => custom_auth::delete_permission(api),
        "QueryCustomAuthPermission" => custom_auth::query_permissions(api),
        "AddCustomAuthConnectBlack" => custom_auth::add_black(api),
        "DeleteCustomAuthConnectBlack" => custom_auth::delete_black(api),
        "QueryCustomAuthConnectBlack" => custom_auth::query_black(api),
        "QueryMqttTraceDevice" => trace::device(api),
        "QueryMqttTraceMessageOfClient" => trace::message_of_client(api),
        "QueryMqttTraceMessagePublish" => trace::message_publish(api),
        "QueryMqttTraceMessageSubscribe" => trace::message_subscribe(api),
        other => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            format!("action {other:?} is not supported"),
        )),
    }
}

/// What an action works with.
struct Api<'a> {
    ctx: &'a HttpCtx,
    core: &'a Arc<CoreAuth>,
    params: &'a Params,
}

fn json(status: StatusCode, body: &Value, request_id: &str) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-acs-request-id", value);
    }
    response
}
