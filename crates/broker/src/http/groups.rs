//! `CreateGroupId`, `DeleteGroupId`, `ListGroupId`: the registered groups clients connect in.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use mqgate_auth::{GroupRecord, Registry as _};
use serde_json::{json, Value};

use super::{Answer, Api, ApiError};
use crate::clock::unix_time_ms;

/// `GroupId` (`GID_` then 3 to 60 letters, digits, `-` or `_`), optional `Tags` (JSON: an
/// array of `{"TagKey", "TagValue"}` or an object of key to value).
pub(super) fn create(api: &Api<'_>) -> Result<Answer, ApiError> {
    let group_id = api.params.required("GroupId")?;
    check_group_id(group_id)?;
    let tags = match api.params.optional("Tags") {
        Some(text) => parse_tags(text)?,
        None => BTreeMap::new(),
    };
    let registry = api.core.registry();
    if registry.group(group_id)?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "GroupId.AlreadyExists",
            format!("group {group_id} already exists"),
        ));
    }
    let mut group = GroupRecord::new(group_id, unix_time_ms());
    group.tags = tags;
    registry.put_group(group)?;
    Ok(Answer::new())
}

/// `GroupId`: clients of the group can no longer connect (live ones stay).
pub(super) fn delete(api: &Api<'_>) -> Result<Answer, ApiError> {
    let group_id = api.params.required("GroupId")?;
    match api.core.registry().remove_group(group_id)? {
        Some(_) => Ok(Answer::new()),
        None => Err(ApiError::not_found(
            "GroupId",
            format!("no group {group_id}"),
        )),
    }
}

/// Every group (those carrying all of `Tags`, if given), sorted by id -> `Data`.
pub(super) fn list(api: &Api<'_>) -> Result<Answer, ApiError> {
    let wanted = match api.params.optional("Tags") {
        Some(text) => parse_tags(text)?,
        None => BTreeMap::new(),
    };
    let mut groups = api.core.registry().groups()?;
    groups.retain(|group| wanted.iter().all(|(k, v)| group.tags.get(k) == Some(v)));
    groups.sort_unstable_by(|a, b| a.group_id.cmp(&b.group_id));
    let instance = &api.core.config().instance_id;
    let data: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let tags: Vec<Value> = group
                .tags
                .iter()
                .map(|(k, v)| json!({ "TagKey": k, "TagValue": v }))
                .collect();
            json!({
                "GroupId": group.group_id,
                "InstanceId": instance,
                "IndependentNaming": group.independent_naming,
                "CreateTime": group.create_time_ms,
                "UpdateTime": group.update_time_ms,
                "Tags": tags,
            })
        })
        .collect();
    let mut answer = Answer::new();
    answer.insert("Data".into(), Value::Array(data));
    Ok(answer)
}

fn check_group_id(group_id: &str) -> Result<(), ApiError> {
    let Some(name) = group_id.strip_prefix(mqgate_topic::GROUP_PREFIX) else {
        return Err(ApiError::invalid("GroupId", "must start with GID_"));
    };
    let fine = (3..=60).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "GroupId",
            "GID_ then 3 to 60 letters, digits, - or _",
        ))
    }
}

fn parse_tags(text: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let bad = |why: &str| ApiError::invalid("Tags", why);
    let value: Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let mut tags = BTreeMap::new();
    match value {
        Value::Array(items) => {
            for item in items {
                let key = item.get("TagKey").and_then(Value::as_str);
                let value = item.get("TagValue").and_then(Value::as_str).unwrap_or("");
                let key = key.ok_or_else(|| bad("each tag needs a TagKey string"))?;
                tags.insert(key.to_owned(), value.to_owned());
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                let value = value
                    .as_str()
                    .ok_or_else(|| bad("tag values must be strings"))?;
                tags.insert(key, value.to_owned());
            }
        }
        _ => return Err(bad("an array of {TagKey, TagValue} or an object")),
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_and_tags() {
        for (id, ok) in [
            ("GID_shop", true),
            ("GID_a-b_c", true),
            ("GID_ab", false),
            ("gid_shop", false),
            ("GID_sh op", false),
        ] {
            assert_eq!(check_group_id(id).is_ok(), ok, "{id}");
        }
        let tags = parse_tags(r#"[{"TagKey":"env","TagValue":"prod"}]"#).unwrap();
        assert_eq!(tags.get("env").map(String::as_str), Some("prod"));
        assert_eq!(parse_tags(r#"{"a":"b"}"#).unwrap().len(), 1);
        for bad in ["x", "[1]", r#"{"a":1}"#, "3"] {
            assert_eq!(
                parse_tags(bad).unwrap_err().code,
                "InvalidParameter.Tags",
                "{bad}"
            );
        }
    }
}
