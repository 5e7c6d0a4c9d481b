//! `SendMessage`: a backend pushes a message to devices over HTTP, through the router
//! exactly like [`BrokerHandle::publish`](crate::BrokerHandle::publish) (subscribers by
//! topic, or one client by its P2P address).

use axum::http::StatusCode;
use bytes::Bytes;
use mqgate_codec::QoS;
use mqgate_topic::TopicName;
use serde_json::Value;

use super::{Answer, Api, ApiError};
use crate::BrokerError;

/// `MqttTopic`, `Payload` -> `MsgId`. The payload is sent as given (the model service's
/// SDKs recommend Base64 text; it is not decoded), at QoS 1, not retained. The topic must
/// be one the signing AccessKey may publish to.
pub(super) async fn send(api: &Api<'_>) -> Result<Answer, ApiError> {
    let topic = api.params.required("MqttTopic")?;
    let payload = api.params.required("Payload")?;
    TopicName::validate(topic).map_err(|e| ApiError::invalid("MqttTopic", e))?;
    let key = api.core.access_key(api.params.access_key_id());
    if !key.is_some_and(|key| key.policy.publish.allows_topic(topic)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden.MqttTopic",
            format!("the AccessKey may not publish to {topic}"),
        ));
    }
    let payload = Bytes::copy_from_slice(payload.as_bytes());
    let id = api
        .ctx
        .core
        .publish_topic(topic, payload, QoS::AtLeastOnce, false)
        .await
        .map_err(|error| match error {
            BrokerError::InvalidTopic(why) => ApiError::invalid("MqttTopic", why),
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                other.to_string(),
            ),
        })?;
    let mut answer = Answer::new();
    answer.insert("MsgId".into(), Value::String(id.to_string()));
    Ok(answer)
}
