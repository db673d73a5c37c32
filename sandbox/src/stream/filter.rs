//! Stream's query filters (`filter_conditions`), the subset the SDKs send: a field equals a value (`"f": v` or
//! `{"$eq": v}`), is one of several (`{"$in": [...]}`), and `$and` / `$or` of filters. A field with several values
//! (a channel's `members`) matches when any value does. An operator or field the double does not know is refused
//! with Stream's 400, so a test never passes on a filter that was silently ignored. Results are paged by `limit`
//! and `offset` ([`Page`]).

use super::errors::StreamError;
use super::state::Channel;
use serde_json::Value;

/// The values of one field of the object being filtered; `None` = a field this filter cannot use.
pub(crate) trait Fields {
    fn field(&self, name: &str) -> Option<Vec<Value>>;
}

impl Fields for Channel {
    fn field(&self, name: &str) -> Option<Vec<Value>> {
        match name {
            "type" => Some(vec![Value::String(self.channel_type.clone())]),
            "id" => Some(vec![Value::String(self.id.clone())]),
            "cid" => Some(vec![Value::String(self.cid())]),
            "created_by_id" => Some(vec![Value::String(self.created_by_id.clone())]),
            "members" => Some(self.members.iter().cloned().map(Value::String).collect()),
            _ => None,
        }
    }
}

pub(crate) fn matches(
    endpoint: &str,
    filter: &Value,
    object: &dyn Fields,
) -> Result<bool, StreamError> {
    let Some(conditions) = filter.as_object() else {
        return Err(StreamError::input(endpoint, "a filter must be an object"));
    };
    for (key, condition) in conditions {
        let matched = match key.as_str() {
            "$and" | "$or" => {
                let Some(parts) = condition.as_array() else {
                    return Err(StreamError::input(
                        endpoint,
                        format!("{key} needs an array of filters"),
                    ));
                };
                let mut results = Vec::with_capacity(parts.len());
                for part in parts {
                    results.push(matches(endpoint, part, object)?);
                }
                if key == "$and" {
                    results.iter().all(|r| *r)
                } else {
                    results.iter().any(|r| *r)
                }
            }
            field => {
                let Some(values) = object.field(field) else {
                    return Err(StreamError::input(
                        endpoint,
                        format!("field {field:?} is not supported in filter_conditions"),
                    ));
                };
                field_matches(endpoint, field, &values, condition)?
            }
        };
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

fn field_matches(
    endpoint: &str,
    field: &str,
    values: &[Value],
    condition: &Value,
) -> Result<bool, StreamError> {
    let Some(operators) = condition.as_object() else {
        return Ok(values.contains(condition));
    };
    for (operator, operand) in operators {
        let matched = match operator.as_str() {
            "$eq" => values.contains(operand),
            "$in" => match operand.as_array() {
                Some(candidates) => candidates.iter().any(|c| values.contains(c)),
                None => {
                    return Err(StreamError::input(
                        endpoint,
                        format!("{field}.$in needs an array"),
                    ))
                }
            },
            other => {
                return Err(StreamError::input(
                    endpoint,
                    format!("operator {other} is not supported for field {field}"),
                ))
            }
        };
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `limit` and `offset` of a query, checked against the endpoint's default and maximum.
pub(crate) struct Page {
    limit: usize,
    offset: usize,
}

impl Page {
    pub(crate) fn parse(
        endpoint: &str,
        query: &Value,
        default_limit: usize,
        max_limit: usize,
    ) -> Result<Self, StreamError> {
        let number = |name: &str, default: usize| match query.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    StreamError::input(endpoint, format!("{name} must be a non-negative integer"))
                }),
        };
        let limit = number("limit", default_limit)?;
        if limit > max_limit {
            return Err(StreamError::input(
                endpoint,
                format!("limit must be {max_limit} or less"),
            ));
        }
        Ok(Self {
            limit,
            offset: number("offset", 0)?,
        })
    }

    pub(crate) fn of<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn channel() -> Channel {
        Channel {
            channel_type: "messaging".to_owned(),
            id: "c1".to_owned(),
            created_by_id: "ada".to_owned(),
            members: vec!["ada".to_owned(), "agent".to_owned()],
            created_at: String::new(),
            custom: serde_json::Map::new(),
        }
    }

    #[test]
    fn equality_in_and_or_over_members() {
        let c = channel();
        let ok = |f: Value| matches("X", &f, &c).expect("supported");
        assert!(ok(
            json!({"type": "messaging", "members": {"$in": ["agent"]}})
        ));
        assert!(!ok(json!({"members": {"$in": ["bob"]}})));
        assert!(ok(
            json!({"cid": {"$in": ["messaging:c1", "messaging:c2"]}})
        ));
        assert!(!ok(json!({"cid": {"$eq": "messaging:c2"}})));
        assert!(ok(json!({"$or": [{"id": "x"}, {"id": "c1"}]})));
        assert!(!ok(json!({"$and": [{"id": "c1"}, {"type": "team"}]})));
    }

    #[test]
    fn unknown_fields_and_operators_are_refused() {
        let c = channel();
        assert_eq!(
            matches("X", &json!({"color": "red"}), &c).map_err(|e| e.status),
            Err(400)
        );
        assert_eq!(
            matches("X", &json!({"id": {"$gt": 1}}), &c).map_err(|e| e.status),
            Err(400)
        );
    }
}
