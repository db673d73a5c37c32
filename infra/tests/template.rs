//! Drift checks of template.yaml against the code: the table's schema is the one `DynamoStore` uses (one source of
//! truth: `chat_sync::adapters::dynamo::schema`), every function builds a binary the workspace has, no secret sits
//! in the environment, and each function may read exactly the secrets it is given. And of the HubSpot app as code
//! (`hubspot/`): its scopes are the code's, its webhooks go to the stack's output, and HubSpot's own parser reads it.
//! And of the vendors' OpenAPI documents the contract check validates traffic against (`contract/specs/`): each file
//! is byte for byte the one `sources.json` names, by its sha256, and every document there is listed.

use chat_sync::adapters::dynamo::schema;
use chat_sync::adapters::hubspot::REQUIRED_SCOPES;
use serde_norway::{Mapping, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("infra/ has a parent")
        .to_path_buf()
}

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

#[test]
fn table_schema_is_the_one_the_code_uses() {
    let template = template();
    let tables = resources_of_type(&template, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1, "one table (single-table design)");
    let table = &tables[0].1["Properties"];

    assert_eq!(string(&table["BillingMode"]), schema::BILLING_MODE);
    assert_eq!(
        key_schema(&table["KeySchema"]),
        [(schema::PARTITION_KEY, "HASH"), (schema::SORT_KEY, "RANGE")]
    );

    let indexes = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("GlobalSecondaryIndexes is a list");
    let expected_indexes = [
        (
            schema::DIRTY_INDEX,
            schema::DIRTY_INDEX_PARTITION_KEY,
            schema::DIRTY_INDEX_SORT_KEY,
            schema::DIRTY_INDEX_PROJECTION,
        ),
        (
            schema::IDLE_INDEX,
            schema::IDLE_INDEX_PARTITION_KEY,
            schema::IDLE_INDEX_SORT_KEY,
            schema::IDLE_INDEX_PROJECTION,
        ),
    ];
    assert_eq!(
        indexes.len(),
        expected_indexes.len(),
        "the queue and the idle index"
    );
    for (index, (name, partition, sort, projection)) in indexes.iter().zip(expected_indexes) {
        assert_eq!(string(&index["IndexName"]), name);
        assert_eq!(
            key_schema(&index["KeySchema"]),
            [(partition, "HASH"), (sort, "RANGE")]
        );
        assert_eq!(string(&index["Projection"]["ProjectionType"]), "INCLUDE");
        let projected: Vec<&str> = index["Projection"]["NonKeyAttributes"]
            .as_sequence()
            .expect("NonKeyAttributes is a list")
            .iter()
            .map(string)
            .collect();
        assert_eq!(projected, projection);
    }

    // Exactly the key attributes, all strings (CloudFormation rejects definitions no key uses).
    let defined: BTreeMap<&str, &str> = table["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions is a list")
        .iter()
        .map(|a| (string(&a["AttributeName"]), string(&a["AttributeType"])))
        .collect();
    let expected: BTreeMap<&str, &str> = [
        schema::PARTITION_KEY,
        schema::SORT_KEY,
        schema::DIRTY_INDEX_PARTITION_KEY,
        schema::DIRTY_INDEX_SORT_KEY,
        schema::IDLE_INDEX_PARTITION_KEY,
        schema::IDLE_INDEX_SORT_KEY,
    ]
    .into_iter()
    .map(|name| (name, "S"))
    .collect();
    assert_eq!(defined, expected);

    let ttl = &table["TimeToLiveSpecification"];
    assert_eq!(string(&ttl["AttributeName"]), schema::TTL_ATTRIBUTE);
    assert_eq!(ttl["Enabled"], Value::Bool(true));
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        Value::Bool(true)
    );
    assert_eq!(table["SSESpecification"]["SSEEnabled"], Value::Bool(true));
}

/// The `[[bin]]` names in a Cargo.toml.
fn cargo_bins(manifest: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let parsed: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    parsed
        .get("bin")
        .and_then(toml::Value::as_array)
        .map(|bins| {
            bins.iter()
                .filter_map(|bin| bin.get("name").and_then(toml::Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_function_builds_a_workspace_binary() {
    let template = template();
    let functions = resources_of_type(&template, "AWS::Serverless::Function");
    // One function per Lambda crate in functions/ (chat-sync is the library they share).
    let crates = std::fs::read_dir(repo_root().join("functions"))
        .expect("functions/ is readable")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() != "chat-sync")
        .count();
    assert_eq!(functions.len(), crates, "one function per Lambda crate");
    let mut binaries = BTreeSet::new();
    for (name, function) in functions {
        let metadata = &function["Metadata"];
        assert_eq!(
            metadata["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name}: BuildMethod"
        );
        let binary = metadata["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: Metadata.BuildProperties.Binary"));
        // cargo-lambda builds the named binary of the workspace at CodeUri.
        assert_eq!(
            function["Properties"]["CodeUri"].as_str(),
            Some("."),
            "{name}: CodeUri"
        );
        let manifest = repo_root()
            .join("functions")
            .join(binary)
            .join("Cargo.toml");
        assert!(
            cargo_bins(&manifest).iter().any(|bin| bin == binary),
            "{name}: {} has no [[bin]] named {binary}",
            manifest.display()
        );
        assert!(binaries.insert(binary), "{name}: {binary} is built twice");
    }
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
}

/// The names the code reads with `Env::secret` or `Env::optional_secret`, found in its source so a new secret is
/// checked too.
fn secret_names_in_code() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut dirs = vec![repo_root().join("functions/chat-sync/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("source dir is readable") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source is readable");
            let calls = [".secret(", ".optional_secret("]
                .into_iter()
                .flat_map(|call| text.match_indices(call).map(move |(at, _)| at + call.len()));
            for start in calls {
                let rest = text[start..].trim_start();
                if let Some(quoted) = rest.strip_prefix('"') {
                    if let Some(end) = quoted.find('"') {
                        names.insert(quoted[..end].to_owned());
                    }
                }
            }
        }
    }
    names
}

/// Every `Environment.Variables` map in the template (Globals and each function), with where it is.
fn environments(template: &Value) -> Vec<(String, &Mapping)> {
    let mut found = Vec::new();
    if let Some(vars) = template["Globals"]["Function"]["Environment"]["Variables"].as_mapping() {
        found.push(("Globals".to_owned(), vars));
    }
    for (name, function) in resources_of_type(template, "AWS::Serverless::Function") {
        if let Some(vars) = function["Properties"]["Environment"]["Variables"].as_mapping() {
            found.push((name.to_owned(), vars));
        }
    }
    found
}

#[test]
fn no_secret_is_in_the_environment() {
    let template = template();
    let secrets = secret_names_in_code();
    assert!(
        secrets.contains("HUBSPOT_ACCESS_TOKEN")
            && secrets.contains("STREAM_API_SECRET")
            && secrets.contains("IDENTITY_SECRET"),
        "the scan of the code found {secrets:?}"
    );
    let parameters = template["Parameters"].as_mapping().expect("Parameters");
    for (place, vars) in environments(&template) {
        for (name, value) in vars {
            let name = string(name);
            assert!(
                !secrets.contains(name),
                "{place}: {name} would put a secret in the environment; set {name}_SECRET_ARN instead"
            );
            let last_word = name.rsplit('_').next().unwrap_or(name).to_ascii_uppercase();
            if ["SECRET", "TOKEN", "PASSWORD", "CREDENTIALS"].contains(&last_word.as_str()) {
                assert!(
                    name.ends_with("_SECRET_ARN"),
                    "{place}: {name} looks like a secret; only *_SECRET_ARN references belong in the environment"
                );
            }
            if name.ends_with("_SECRET_ARN") {
                let parameter = reference(value).unwrap_or_else(|| {
                    panic!("{place}: {name} must be !Ref to a parameter, not a literal")
                });
                assert!(
                    parameters.contains_key(parameter),
                    "{place}: {name} refers to {parameter}, which is not a parameter"
                );
            }
        }
    }
}

/// The parameters named by `NAME_SECRET_ARN` variables a function sees (its own and the Globals).
fn secret_parameters_in_environment(template: &Value, function: &Value) -> BTreeSet<String> {
    let globals = template["Globals"]["Function"]["Environment"]["Variables"].as_mapping();
    let own = function["Properties"]["Environment"]["Variables"].as_mapping();
    globals
        .into_iter()
        .chain(own)
        .flat_map(|vars| vars.iter())
        .filter(|(name, _)| name.as_str().is_some_and(|n| n.ends_with("_SECRET_ARN")))
        .filter_map(|(_, value)| reference(value).map(str::to_owned))
        .collect()
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value.as_sequence() {
        Some(items) => items.iter().collect(),
        None => vec![value],
    }
}

/// The statements of a function's role (explicit `AWS::IAM::Role` referenced by `Role: !GetAtt X.Arn`).
fn role_statements<'a>(template: &'a Value, name: &str, function: &Value) -> Vec<&'a Value> {
    let role = match &function["Properties"]["Role"] {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => {
            string(&tagged.value).trim_end_matches(".Arn").to_owned()
        }
        other => panic!("{name}: Role must be !GetAtt <its role>.Arn, got {other:?}"),
    };
    let role = &template["Resources"][role.as_str()];
    assert_eq!(
        role["Type"].as_str(),
        Some("AWS::IAM::Role"),
        "{name}: its role"
    );
    role["Properties"]["Policies"]
        .as_sequence()
        .expect("the role has inline policies")
        .iter()
        .flat_map(|policy| as_list(&policy["PolicyDocument"]["Statement"]))
        .collect()
}

#[test]
fn each_function_reads_exactly_its_secrets_and_no_resource_is_a_wildcard() {
    let template = template();
    for (name, function) in resources_of_type(&template, "AWS::Serverless::Function") {
        let statements = role_statements(&template, name, function);
        let mut readable = BTreeSet::new();
        for statement in &statements {
            for resource in as_list(&statement["Resource"]) {
                assert!(
                    resource.as_str().is_none_or(|r| !r.contains('*')),
                    "{name}: a statement grants {resource:?}"
                );
            }
            let actions: Vec<&str> = as_list(&statement["Action"])
                .into_iter()
                .map(string)
                .collect();
            if actions.contains(&"secretsmanager:GetSecretValue") {
                assert_eq!(actions.len(), 1, "{name}: secrets get their own statement");
                for resource in as_list(&statement["Resource"]) {
                    let parameter = reference(resource)
                        .unwrap_or_else(|| panic!("{name}: secret resources are !Ref parameters"));
                    readable.insert(parameter.to_owned());
                }
            }
        }
        assert_eq!(
            readable,
            secret_parameters_in_environment(&template, function),
            "{name}: the secrets it may read must be exactly the ones in its environment"
        );
    }
}

/// The logical id in `!GetAtt X.Attr` / `!GetAtt [X, Attr]`, if the value is one.
fn get_att(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => match &tagged.value {
            Value::String(path) => path.split('.').next(),
            Value::Sequence(parts) => parts.first().and_then(Value::as_str),
            _ => None,
        },
        _ => None,
    }
}

/// `!If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]`: the topic when one is set, no action otherwise.
fn notifies_the_optional_topic(actions: &Value) -> bool {
    let Value::Tagged(tagged) = actions else {
        return false;
    };
    let Some([condition, then, otherwise]) = tagged.value.as_sequence().map(Vec::as_slice) else {
        return false;
    };
    tagged.tag == "If"
        && condition.as_str() == Some("HasAlarmTopic")
        && then
            .as_sequence()
            .map(|t| t.iter().map(reference).collect::<Vec<_>>())
            == Some(vec![Some("AlarmTopicArn")])
        && reference(otherwise) == Some("AWS::NoValue")
}

fn alarms(template: &Value) -> Vec<(&str, &Value)> {
    resources_of_type(template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(name, alarm)| (name, &alarm["Properties"]))
        .collect()
}

#[test]
fn every_alarm_notifies_the_optional_topic_and_every_function_has_error_and_throttle_alarms() {
    let template = template();
    assert!(
        template["Parameters"]["AlarmTopicArn"]["Default"].as_str() == Some(""),
        "AlarmTopicArn is optional"
    );
    let alarms = alarms(&template);
    for (name, alarm) in &alarms {
        for actions in ["AlarmActions", "OKActions"] {
            assert!(
                notifies_the_optional_topic(&alarm[actions]),
                "{name}: {actions} must be !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]"
            );
        }
        assert!(
            alarm["AlarmDescription"]
                .as_str()
                .is_some_and(|d| d.len() > 40),
            "{name}: say what it means and what to do"
        );
    }
    for (function, _) in resources_of_type(&template, "AWS::Serverless::Function") {
        for metric in ["Errors", "Throttles"] {
            let watching: Vec<&str> = alarms
                .iter()
                .filter(|(_, alarm)| {
                    alarm["Namespace"].as_str() == Some("AWS/Lambda")
                        && alarm["MetricName"].as_str() == Some(metric)
                        && alarm["Dimensions"].as_sequence().is_some_and(|dims| {
                            dims.iter().any(|d| {
                                d["Name"].as_str() == Some("FunctionName")
                                    && reference(&d["Value"]) == Some(function)
                            })
                        })
                })
                .map(|(name, _)| *name)
                .collect();
            assert_eq!(
                watching.len(),
                1,
                "{function}: one alarm on its {metric}, found {watching:?}"
            );
        }
    }
}

#[test]
fn the_backlog_alarms_watch_the_metrics_the_sweeper_publishes() {
    use chat_sync::metrics::{
        BACKLOG_CONTACTS, NAMESPACE, OLDEST_BEHIND_SECONDS, PARKED_CONTACTS, TABLE_DIMENSION,
    };
    let template = template();
    let table = resources_of_type(&template, "AWS::DynamoDB::Table")[0].0;
    let mut watched = BTreeSet::new();
    for (name, alarm) in alarms(&template) {
        if alarm["Namespace"].as_str() != Some(NAMESPACE) {
            continue;
        }
        let dimensions = alarm["Dimensions"].as_sequence().expect("Dimensions");
        assert_eq!(
            dimensions.len(),
            1,
            "{name}: exactly the dimension set published"
        );
        assert_eq!(
            dimensions[0]["Name"].as_str(),
            Some(TABLE_DIMENSION),
            "{name}"
        );
        assert_eq!(reference(&dimensions[0]["Value"]), Some(table), "{name}");
        watched.insert(string(&alarm["MetricName"]).to_owned());
    }
    let published: BTreeSet<String> = [BACKLOG_CONTACTS, OLDEST_BEHIND_SECONDS, PARKED_CONTACTS]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        watched, published,
        "an alarm on each published metric, and on nothing else"
    );
    // The sweeper (which publishes them) knows the table, its dimension's value.
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(reference(&globals["TABLE_NAME"]), Some(table));
}

#[test]
fn the_http_api_logs_each_request_without_personal_data() {
    let template = template();
    let api = &template["Resources"]["HttpApi"]["Properties"];
    let settings = &api["AccessLogSettings"];
    let group =
        get_att(&settings["DestinationArn"]).expect("DestinationArn is !GetAtt <log group>.Arn");
    let group = &template["Resources"][group];
    assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"));
    assert_eq!(
        reference(&group["Properties"]["RetentionInDays"]),
        Some("LogRetentionDays")
    );
    let format: serde_json::Value =
        serde_json::from_str(string(&settings["Format"])).expect("the access log format is JSON");
    let fields = format.as_object().expect("one JSON object per request");
    for needed in ["requestId", "routeKey", "status", "integrationError"] {
        assert!(fields.contains_key(needed), "the access log has {needed}");
    }
    let variables: Vec<&str> = fields
        .values()
        .filter_map(serde_json::Value::as_str)
        .collect();
    for personal in [
        "sourceIp",
        "userAgent",
        "identity",
        "requestBody",
        "querystring",
        "path",
    ] {
        assert!(
            variables.iter().all(|v| !v.contains(personal)),
            "the access log must not hold {personal}: {variables:?}"
        );
    }
}

#[test]
fn the_registration_url_works_in_every_partition() {
    let template = template();
    let output = &template["Outputs"]["RegistrationApiUrl"]["Value"];
    let Value::Tagged(tagged) = output else {
        panic!("RegistrationApiUrl is a !Sub");
    };
    assert_eq!(tagged.tag, "Sub");
    let url = string(&tagged.value);
    assert!(
        url.contains("${AWS::URLSuffix}") && !url.contains("amazonaws.com"),
        "China regions end in amazonaws.com.cn: {url}"
    );
}

/// Translates the template with the SAM translator (what `sam deploy` and CloudFormation run) for each value of
/// `AllowedOrigins`, and returns the HTTP API's `x-amazon-apigateway-cors` for each, as JSON.
fn translated_cors(origins: &[&str]) -> Vec<serde_json::Value> {
    const TRANSLATE: &str = r#"
import json, os, sys
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

source = open(sys.argv[1]).read()
for origins in sys.argv[2:]:
    template = yaml_parse(source)
    # As `sam package` leaves it: the code in S3.
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"
    out = transform(template, {"AllowedOrigins": origins}, NoManagedPolicies())
    api = [r for r in out["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    print(json.dumps(api[0]["Properties"]["Body"].get("x-amazon-apigateway-cors")))
"#;
    let venv = repo_root().join(".venv/bin/python");
    let python = if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    };
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(TRANSLATE)
        .arg(repo_root().join("template.yaml"))
        .args(origins)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make template-deps`)", python.display()));
    assert!(
        output.status.success(),
        "the SAM translator failed (run `make template-deps` for it):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect()
}

/// Resolves what CloudFormation resolves in the CORS block: `Ref` to the CommaDelimitedList parameter (a list),
/// `Fn::Join`, `Fn::Split`.
fn resolve(value: &serde_json::Value, origins: &str) -> serde_json::Value {
    use serde_json::{json, Value as Json};
    let Some(object) = value.as_object() else {
        return value.clone();
    };
    if let Some(name) = object.get("Ref") {
        assert_eq!(name, "AllowedOrigins", "only the origins are referenced");
        return json!(origins.split(',').collect::<Vec<_>>());
    }
    if let Some(args) = object.get("Fn::Join") {
        let parts = resolve(&args[1], origins);
        let parts: Vec<&str> = parts
            .as_array()
            .expect("Fn::Join takes a list")
            .iter()
            .map(|p| p.as_str().expect("strings"))
            .collect();
        return Json::String(parts.join(args[0].as_str().expect("a delimiter")));
    }
    if let Some(args) = object.get("Fn::Split") {
        let whole = resolve(&args[1], origins);
        let whole = whole.as_str().expect("Fn::Split takes a string");
        return json!(whole
            .split(args[0].as_str().expect("a delimiter"))
            .collect::<Vec<_>>());
    }
    Json::Object(
        object
            .iter()
            .map(|(k, v)| (k.clone(), resolve(v, origins)))
            .collect(),
    )
}

#[test]
fn allowed_origins_reach_api_gateway_cors_as_a_list() {
    let cases = [
        ("https://www.example.com", vec!["https://www.example.com"]),
        (
            "https://www.example.com,https://shop.example.com",
            vec!["https://www.example.com", "https://shop.example.com"],
        ),
        ("*", vec!["*"]),
    ];
    let translated = translated_cors(&cases.iter().map(|(raw, _)| *raw).collect::<Vec<_>>());
    assert_eq!(translated.len(), cases.len());
    for ((raw, expected), cors) in cases.iter().zip(&translated) {
        let resolved = resolve(cors, raw);
        assert_eq!(
            resolved["allowOrigins"],
            serde_json::json!(expected),
            "AllowedOrigins={raw}: translated {cors}"
        );
        assert_eq!(
            resolved["allowMethods"],
            serde_json::json!(["POST", "OPTIONS"])
        );
    }
}

#[test]
fn samconfig_builds_and_deploys_one_architecture_and_validates_in_a_region() {
    let text = std::fs::read_to_string(repo_root().join("samconfig.toml")).expect("samconfig.toml");
    let config: toml::Table = text.parse().expect("samconfig.toml is TOML");
    let parameters = |command: &str| {
        config["default"][command]["parameters"]
            .as_table()
            .unwrap_or_else(|| panic!("[default.{command}.parameters]"))
            .clone()
    };
    let architecture = |command: &str| {
        let overrides = parameters(command)["parameter_overrides"]
            .as_str()
            .unwrap_or_else(|| panic!("{command}: parameter_overrides"))
            .to_owned();
        overrides
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix("Architecture=").map(str::to_owned))
            .unwrap_or_else(|| panic!("{command}: Architecture in {overrides:?}"))
    };
    let built = architecture("build");
    assert_eq!(
        built,
        architecture("deploy"),
        "sam build and sam deploy must agree"
    );
    let template = template();
    let allowed = template["Parameters"]["Architecture"]["AllowedValues"]
        .as_sequence()
        .expect("Architecture's AllowedValues");
    assert!(allowed.iter().any(|v| v.as_str() == Some(built.as_str())));

    let deploy = parameters("deploy");
    assert_eq!(deploy["capabilities"].as_str(), Some("CAPABILITY_IAM"));
    assert_eq!(deploy["confirm_changeset"].as_bool(), Some(true));
    assert_eq!(deploy["resolve_s3"].as_bool(), Some(true));
    assert!(
        parameters("validate")["region"].as_str().is_some(),
        "sam validate needs a region"
    );
}

/// A `*-hsmeta.json` file of the HubSpot project, under `hubspot/src/`.
fn hsmeta(path: &str) -> serde_json::Value {
    let path = repo_root().join("hubspot/src").join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_hubspot_app_requires_exactly_the_scopes_the_code_uses() {
    let app = hsmeta("app/app-hsmeta.json");
    let auth = &app["config"]["auth"];
    let scopes: Vec<&str> = auth["requiredScopes"]
        .as_array()
        .expect("config.auth.requiredScopes is a list")
        .iter()
        .map(|scope| scope.as_str().expect("a scope is a string"))
        .collect();
    let listed: BTreeSet<&str> = scopes.iter().copied().collect();
    assert_eq!(
        listed.len(),
        scopes.len(),
        "a scope listed twice: {scopes:?}"
    );
    assert_eq!(
        listed,
        REQUIRED_SCOPES.iter().copied().collect::<BTreeSet<_>>(),
        "requiredScopes of hubspot/src/app/app-hsmeta.json must be chat_sync::adapters::hubspot::REQUIRED_SCOPES"
    );
    // A private app's kind: one static token for one account, so required scopes only.
    assert_eq!(app["config"]["distribution"], "private");
    assert_eq!(auth["type"], "static");
    for other in ["optionalScopes", "conditionallyRequiredScopes"] {
        assert!(
            auth[other].as_array().is_none_or(Vec::is_empty),
            "{other}: static auth takes required scopes only"
        );
    }
}

#[test]
fn the_hubspot_webhooks_go_to_the_stacks_output_and_follow_a_contacts_erasure() {
    let webhooks = hsmeta("app/webhooks/webhooks-hsmeta.json");
    let config = &webhooks["config"];
    let target = config["settings"]["targetUrl"]
        .as_str()
        .expect("settings.targetUrl");
    let output = target
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| {
            panic!("targetUrl must be a profile variable, ${{<stack output>}}, not {target:?}")
        });

    // The variable is a stack output (hubspot/profile.mjs copies each into the profile), and that output is the
    // route the HubSpot webhooks function serves.
    let template = template();
    let url = match &template["Outputs"][output]["Value"] {
        Value::Tagged(tagged) if tagged.tag == "Sub" => string(&tagged.value),
        other => panic!("template.yaml has no output {output} (!Sub): {other:?}"),
    };
    let events = template["Resources"]["HubSpotWebhooksFunction"]["Properties"]["Events"]
        .as_mapping()
        .expect("HubSpotWebhooksFunction's Events");
    let paths: Vec<&str> = events
        .values()
        .map(|event| string(&event["Properties"]["Path"]))
        .collect();
    assert!(
        paths.iter().any(|path| url.ends_with(path)),
        "output {output} ({url}) is none of the function's routes {paths:?}"
    );

    let subscribed: BTreeSet<&str> = ["legacyCrmObjects", "hubEvents"]
        .iter()
        .flat_map(|list| {
            config["subscriptions"][list]
                .as_array()
                .into_iter()
                .flatten()
        })
        .inspect(|subscription| assert_eq!(subscription["active"], true, "{subscription}"))
        .map(|subscription| {
            subscription["subscriptionType"]
                .as_str()
                .expect("subscriptionType")
        })
        .collect();
    assert_eq!(
        subscribed,
        BTreeSet::from([
            "contact.deletion",
            "contact.merge",
            "contact.privacyDeletion",
            "contact.restore"
        ])
    );
}

/// `hubspot/check.mjs`: the project read offline by HubSpot's parser (@hubspot/project-parsing-lib, what the CLI
/// runs before an upload), failing on any file it refuses or skips.
#[test]
fn the_hubspot_project_passes_hubspots_own_parser() {
    let root = repo_root();
    assert!(
        root.join("node_modules/@hubspot/project-parsing-lib/package.json")
            .is_file(),
        "HubSpot's project parser is not installed: run `make deps` (npm ci) at {}",
        root.display()
    );
    let output = Command::new("node")
        .arg(root.join("hubspot/check.mjs"))
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .expect("run node (Node 20+ is required)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "HubSpot's parser refused the project in hubspot/ ({}):\n{report}",
        output.status
    );
    assert!(report.contains("[hubspot] OK"), "{report}");
    println!("{report}");
}

/// `contract/specs/sources.json` says where each vendored document came from (repository, path, commit) and its
/// sha256: every file matches its hash (a document edited by hand, or re-fetched without updating the table, fails
/// here), and no document sits in `contract/specs/` unlisted.
#[test]
fn the_vendored_openapi_documents_are_the_published_ones() {
    let specs = repo_root().join("contract/specs");
    let sources: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(specs.join("sources.json")).expect("sources.json is readable"),
    )
    .expect("sources.json is JSON");
    let documents = sources["documents"]
        .as_array()
        .expect("sources.json has a documents list");
    let mut listed = BTreeSet::new();
    for document in documents {
        let field = |name: &str| {
            document[name]
                .as_str()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| panic!("{name} missing in {document}"))
        };
        let file = field("file");
        let commit = field("commit");
        assert!(
            commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{file}: commit {commit:?} is not a full commit id"
        );
        assert!(field("repository").starts_with("https://"), "{file}");
        assert!(field("path").ends_with(".json"), "{file}");
        let bytes = std::fs::read(specs.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let actual = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(
            actual,
            field("sha256"),
            "{file} is not the document sources.json names: re-vendor it (contract/README.md)"
        );
        assert!(listed.insert(file.to_owned()), "{file} listed twice");
    }
    let mut present = BTreeSet::new();
    for service in std::fs::read_dir(&specs).expect("contract/specs") {
        let service = service.expect("entry").path();
        if !service.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&service).expect("a service's documents") {
            let path = file.expect("entry").path();
            let relative = path
                .strip_prefix(&specs)
                .expect("under contract/specs")
                .to_string_lossy()
                .replace('\\', "/");
            present.insert(relative);
        }
    }
    assert_eq!(
        present, listed,
        "every document in contract/specs is listed in sources.json"
    );
}

/// The endpoint variables the template declares for `sam local` (README: Invoke the functions locally) are empty,
/// and the AWS SDK ignores them when deployed: given an empty endpoint it would panic at the first AWS call.
#[test]
fn declared_endpoint_variables_are_empty_and_ignored_when_deployed() {
    let template = template();
    let mut declared = Vec::new();
    for (place, vars) in environments(&template) {
        for (name, value) in vars {
            let name = string(name);
            if name.starts_with("AWS_ENDPOINT_URL") {
                assert_eq!(value.as_str(), Some(""), "{place}: {name} must be empty");
                declared.push(name.to_owned());
            }
        }
    }
    assert!(
        !declared.is_empty(),
        "sam local can only override declared variables"
    );
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        globals["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"].as_str(),
        Some("true"),
        "{declared:?} are declared: deployed, the SDK must ignore them"
    );
}
