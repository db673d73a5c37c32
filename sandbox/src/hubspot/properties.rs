//! Property values as every object of the double reads and shows them: the updates a request carries, HubSpot's
//! refusals of a value (an unknown property, one too long), and an object's `properties` as HubSpot returns them.

use super::errors::{problem, validation, HsError};
use super::MAX_PROPERTY_CHARS;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Property updates: `None` clears the value (JSON `null` or `""`).
pub(super) type Updates = BTreeMap<String, Option<String>>;

/// A value for a property the object type does not have.
pub(super) fn unknown_property(name: &str) -> Value {
    problem(
        name,
        "PROPERTY_DOESNT_EXIST",
        format!("Property \"{name}\" does not exist"),
    )
}

/// A value over HubSpot's string limit, counted in UTF-16 units as HubSpot (a JVM) counts characters.
pub(super) fn too_long(name: &str, value: &str) -> Option<Value> {
    let len = value.encode_utf16().count();
    (len > MAX_PROPERTY_CHARS).then(|| {
        problem(
            name,
            "INVALID_LENGTH",
            format!("Property \"{name}\" has a value of {len} characters; the limit is {MAX_PROPERTY_CHARS}"),
        )
    })
}

/// An object's `properties` as HubSpot returns them: all of them, or the `wanted` ones (unset → null).
pub(super) fn properties_json(
    values: &BTreeMap<String, String>,
    wanted: Option<&[String]>,
) -> Map<String, Value> {
    match wanted {
        Some(wanted) => wanted
            .iter()
            .map(|name| {
                let value = values
                    .get(name)
                    .map_or(Value::Null, |v| Value::String(v.clone()));
                (name.clone(), value)
            })
            .collect(),
        None => values
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect(),
    }
}

/// Reads a `properties` object: strings, numbers and booleans are stored as strings; `null`/`""` clear a value.
pub(super) fn updates_from(value: &Value, allow_missing: bool) -> Result<Updates, HsError> {
    let object = match value {
        Value::Object(object) => object,
        Value::Null if allow_missing => return Ok(Updates::new()),
        _ => {
            return Err(validation(
                "Invalid input JSON: \"properties\" must be an object",
            ))
        }
    };
    let mut updates = Updates::new();
    for (name, value) in object {
        let value = match value {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            _ => {
                return Err(validation(&format!(
                    "Invalid input JSON: the value of property \"{name}\" must be a string"
                )))
            }
        };
        updates.insert(name.clone(), value);
    }
    Ok(updates)
}
