//! The JSON body of a status event.
//!
//! Writing is the derived `Serialize`, which keeps the key order of the struct
//! (consumers diff and grep these bodies). Reading goes through a `serde_json`
//! map rather than the derived `Deserialize` so every error names the key at
//! fault.

use serde_json::{Map, Value};

use crate::{EventType, StatusError, StatusEvent};

/// Encodes `event` as compact JSON with the documented key order: the derived
/// `Serialize` writes the fields in declaration order.
pub(crate) fn encode(event: &StatusEvent) -> String {
    // Sized for the whole body up front: `to_string` starts at 128 bytes and grows once
    // for a typical event.
    let mut out = Vec::with_capacity(
        event
            .client_id
            .len()
            .saturating_add(event.client_ip.len())
            .saturating_add(128),
    );
    // Strings, integers, a unit variant and a channel id: no part of a status event can fail
    // to serialize, and serde_json writes UTF-8. Neither fallback below is ever taken; they
    // keep a panic out of a path that carries a client's id.
    if serde_json::to_writer(&mut out, event).is_err() {
        out.clear();
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Decodes a body: every key but `seq` required, unknown keys ignored.
pub(crate) fn decode(json: &[u8]) -> Result<StatusEvent, StatusError> {
    let object: Map<String, Value> = serde_json::from_slice(json)
        .map_err(|error| StatusError::NotAnObject(error.to_string()))?;
    let event_type = match required_str(&object, "eventType")? {
        "connect" => EventType::Connect,
        "disconnect" => EventType::Disconnect,
        "tcpclean" => EventType::Tcpclean,
        other => {
            let reason = format!("expected connect, disconnect or tcpclean, found {other:?}");
            return Err(StatusError::InvalidValue {
                key: "eventType",
                reason,
            });
        }
    };
    let channel_id =
        required_str(&object, "channelId")?
            .parse()
            .map_err(|error: StatusError| StatusError::InvalidValue {
                key: "channelId",
                reason: error.to_string(),
            })?;
    Ok(StatusEvent {
        client_id: required_str(&object, "clientId")?.to_owned(),
        time: integer(&object, "time")?.ok_or(StatusError::MissingKey("time"))?,
        event_type,
        channel_id,
        client_ip: required_str(&object, "clientIp")?.to_owned(),
        seq: integer(&object, "seq")?.unwrap_or(0),
    })
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &'static str,
) -> Result<&'a str, StatusError> {
    match object.get(key) {
        None => Err(StatusError::MissingKey(key)),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(StatusError::InvalidValue {
            key,
            reason: format!("expected a string, found {other}"),
        }),
    }
}

fn integer(object: &Map<String, Value>, key: &'static str) -> Result<Option<u64>, StatusError> {
    match object.get(key) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| StatusError::InvalidValue {
                key,
                reason: format!("expected an integer from 0 to 2^64-1, found {value}"),
            }),
    }
}
