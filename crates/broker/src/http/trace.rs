//! Message trace: `QueryMqttTraceDevice`, `QueryMqttTraceMessageOfClient`,
//! `QueryMqttTraceMessagePublish` and `QueryMqttTraceMessageSubscribe`, answered from the
//! trace log (`mqgate-trace`) the broker records into.
//!
//! Times come in as epoch milliseconds (`BeginTime`, `EndTime`, both included) and go out as
//! `yyyy-MM-dd HH:mm:ss.SSS` (UTC); pages are 1-based, `PageSize` 1 to 100, `Reverse=true`
//! for newest first.

use axum::http::StatusCode;
use mqgate_trace::{format_time, Page, Paging, Query, TraceRecord};
use serde_json::{json, Value};

use super::{Answer, Api, ApiError};
use crate::core::trace::Tracer;

/// The time range every trace action requires, and `MqttRegionId` (required, not checked:
/// a broker is its own region).
fn range(api: &Api<'_>) -> Result<(u64, u64), ApiError> {
    api.params.required("MqttRegionId")?;
    let begin = time(api, "BeginTime")?;
    let end = time(api, "EndTime")?;
    if begin > end {
        return Err(ApiError::invalid("EndTime", "before BeginTime"));
    }
    Ok((begin, end))
}

fn time(api: &Api<'_>, name: &str) -> Result<u64, ApiError> {
    api.params.required(name)?;
    api.params.number(name, 0)
}

/// `CurrentPage` (from 1), `PageSize` (1 to 100), `Reverse` (`true` / `false`, default false).
fn paging(api: &Api<'_>) -> Result<Paging, ApiError> {
    api.params.required("CurrentPage")?;
    api.params.required("PageSize")?;
    let current_page = api.params.number("CurrentPage", 1)?;
    if current_page == 0 {
        return Err(ApiError::invalid("CurrentPage", "pages start at 1"));
    }
    let page_size = api.params.number("PageSize", 1)?;
    if !(1..=Paging::MAX_PAGE_SIZE).contains(&page_size) {
        return Err(ApiError::invalid(
            "PageSize",
            format!("from 1 to {}", Paging::MAX_PAGE_SIZE),
        ));
    }
    let reverse = match api.params.optional("Reverse") {
        None => false,
        Some(text) if text.eq_ignore_ascii_case("true") => true,
        Some(text) if text.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(ApiError::invalid("Reverse", "true or false")),
    };
    Ok(Paging {
        current_page,
        page_size,
        reverse,
    })
}

/// `MsgId`: 32 hex digits, as `SendMessage` and the trace answer them.
fn message_id(api: &Api<'_>) -> Result<u128, ApiError> {
    let text = api.params.required("MsgId")?;
    if text.len() != 32 {
        return Err(ApiError::invalid("MsgId", "not 32 hex digits"));
    }
    u128::from_str_radix(text, 16).map_err(|_| ApiError::invalid("MsgId", "not 32 hex digits"))
}

/// The recorder; 403 `Trace.Disabled` when trace is off (an empty answer would say nothing
/// happened).
fn tracer<'a>(api: &'a Api<'_>) -> Result<&'a Tracer, ApiError> {
    api.ctx.core.trace.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Trace.Disabled",
            "message trace is off on this broker ([trace] enabled = false)",
        )
    })
}

fn run(api: &Api<'_>, query: &Query, range: (u64, u64), paging: Paging) -> Result<Page, ApiError> {
    tracer(api)?
        .query(query, range.0, range.1, paging)
        .map_err(|error| {
            tracing::error!(%error, "trace log unreadable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "the trace log could not be read; try again",
            )
        })
}

/// The fields every trace entry has.
fn entry(record: &TraceRecord) -> Value {
    json!({
        "Time": format_time(record.time_ms),
        "Action": record.action.name(),
        "ActionCode": record.action.code(),
        "ActionInfo": record.info.text(),
    })
}

/// [`entry`] with `ClientId` and `MsgId`: a message's trace.
fn message_entry(record: &TraceRecord) -> Value {
    let mut value = entry(record);
    if let Some(fields) = value.as_object_mut() {
        fields.insert("ClientId".into(), Value::from(record.client_id.as_str()));
        fields.insert(
            "MsgId".into(),
            Value::from(record.message_hex().unwrap_or_default()),
        );
    }
    value
}

/// `Total`, `CurrentPage`, `PageSize` and the page's entries under `list`.
fn paged(page: &Page, paging: Paging, list: &str, show: fn(&TraceRecord) -> Value) -> Answer {
    let mut answer = Answer::new();
    answer.insert("Total".into(), Value::from(page.total));
    answer.insert("CurrentPage".into(), Value::from(paging.current_page));
    answer.insert("PageSize".into(), Value::from(paging.page_size));
    answer.insert(
        list.into(),
        Value::Array(page.records.iter().map(show).collect()),
    );
    answer
}

/// `QueryMqttTraceDevice`: a client's connects, closes and disconnects, with `ChannelId`.
pub(super) fn device(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?.to_owned();
    let (range, paging) = (range(api)?, paging(api)?);
    let page = run(api, &Query::Device { client_id }, range, paging)?;
    Ok(paged(&page, paging, "DeviceInfoList", |record| {
        let mut value = entry(record);
        if let Some(fields) = value.as_object_mut() {
            let channel = record.channel_id.clone().unwrap_or_default();
            fields.insert("ChannelId".into(), Value::from(channel));
        }
        value
    }))
}

/// `QueryMqttTraceMessageOfClient`: what a client published (`pub_mqtt`) and received
/// (`sub`, `push_offline`).
pub(super) fn message_of_client(api: &Api<'_>) -> Result<Answer, ApiError> {
    let client_id = api.params.required("ClientId")?.to_owned();
    let (range, paging) = (range(api)?, paging(api)?);
    let page = run(api, &Query::MessagesOfClient { client_id }, range, paging)?;
    Ok(paged(&page, paging, "MessageOfClientList", message_entry))
}

/// `QueryMqttTraceMessagePublish`: how a message entered the broker (`pub_mqtt` from a
/// device, `pub_mq` from the backend side). Not paged: a message enters once.
pub(super) fn message_publish(api: &Api<'_>) -> Result<Answer, ApiError> {
    let message = message_id(api)?;
    let range = range(api)?;
    let paging = Paging::first(Paging::MAX_PAGE_SIZE);
    let page = run(api, &Query::MessagePublish { message }, range, paging)?;
    let mut answer = Answer::new();
    answer.insert(
        "MessageTraceLists".into(),
        Value::Array(page.records.iter().map(message_entry).collect()),
    );
    Ok(answer)
}

/// `QueryMqttTraceMessageSubscribe`: to whom a message was delivered, live (`sub`) or from
/// an offline queue (`push_offline`); only to `ClientId` when given.
pub(super) fn message_subscribe(api: &Api<'_>) -> Result<Answer, ApiError> {
    let message = message_id(api)?;
    let client_id = api.params.optional("ClientId").map(str::to_owned);
    let (range, paging) = (range(api)?, paging(api)?);
    let query = Query::MessageSubscribe { message, client_id };
    let page = run(api, &query, range, paging)?;
    Ok(paged(&page, paging, "MessageTraceLists", message_entry))
}
