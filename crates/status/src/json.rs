//! The JSON body of a status event, written and read by hand.
//!
//! Writing by hand fixes the key order (consumers diff and grep these
//! bodies) and cannot fail. Reading goes through a `serde_json` map rather
//! than the derived `Deserialize` so every error names the key at fault.

use serde_json::{Map, Value};

use crate::{EventType, StatusError, StatusEvent};

/// Encodes `event` as compact JSON with the documented key order.
pub(crate) fn encode(event: &StatusEvent) -> String {
    let mut out = String::with_capacity(
        event
            .client_id
            .len()
            .saturating_add(event.client_ip.len())
            .saturating_add(128),
    );
    out.push_str("{\"clientId\":");
    push_string(&mut out, &event.client_id);
    out.push_str(",\"time\":");
    out.push_str(&event.time.to_string());
    out.push_str(",\"eventType\":\"");
    out.push_str(event.event_type.as_str());
    out.push_str("\",\"channelId\":\"");
    out.push_str(&event.channel_id.to_string());
    out.push_str("\",\"clientIp\":");
    push_string(&mut out, &event.client_ip);
    out.push_str(",\"seq\":");
    out.push_str(&event.seq.to_string());
    out.push('}');
    out
}

/// Appends `text` as a JSON string literal, escaped as serde_json does.
fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
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
