//! Drift checks of template.yaml against the code: the table's schema is the one `DynamoStore` uses (one source of
//! truth: `chat_sync::adapters::dynamo::schema`), every function builds a binary the workspace has, no secret sits
//! in the environment, and each function may read exactly the secrets it is given. And of the HubSpot app as code
//! (`hubspot/`): its scopes are the code's, its webhooks go to the stack's output, and HubSpot's own parser reads it.
//! And of the vendors' OpenAPI documents the contract check validates traffic against (`contract/specs/`): each file
//! is byte for byte the one `sources.json` names, by its sha256, and every document there is listed.

mod functions;
mod operations;
mod vendors;

use crate::support::repo_root;
use chat_sync::adapters::dynamo::schema;
use chat_sync::adapters::hubspot::REQUIRED_SCOPES;
use serde_norway::{Mapping, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The template, with CloudFormation's short-form tags (`!Ref X`) kept as `Value::Tagged`.
fn template() -> Value {
    let path = repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).expect("template.yaml is readable");
    serde_norway::from_str(&text).expect("template.yaml is valid YAML")
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
        .map(|(name, resource)| (name.as_str().expect("logical ids are strings"), resource))
        .collect()
}

fn string(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value:?}"))
}

/// `AttributeName`/`KeyType` pairs of a KeySchema, in order.
fn key_schema(value: &Value) -> Vec<(&str, &str)> {
    value
        .as_sequence()
        .expect("KeySchema is a list")
        .iter()
        .map(|key| (string(&key["AttributeName"]), string(&key["KeyType"])))
        .collect()
}

/// The logical id in `!Ref X`, if the value is one.
fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        Value::Mapping(map) if map.len() == 1 => map.get("Ref").and_then(Value::as_str),
        // `!If [Condition, !Ref X, !Ref AWS::NoValue]`: an optional parameter, X when it is set.
        Value::Tagged(tagged) if tagged.tag == "If" => match tagged.value.as_sequence() {
            Some(branches)
                if branches.len() == 3 && reference(&branches[2]) == Some("AWS::NoValue") =>
            {
                reference(&branches[1])
            }
            _ => None,
        },
        _ => None,
    }
}
