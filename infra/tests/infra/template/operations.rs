//! Alarms, the HTTP API's access log and CORS, the registration URL in every partition, samconfig.

use super::*;

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
CONSOLE = sys.argv[2]
for origins in sys.argv[3:]:
    template = yaml_parse(source)
    # As `sam package` leaves it: the code in S3.
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"
    out = transform(template, {"AllowedOrigins": origins, "AgentConsoleUrl": CONSOLE}, NoManagedPolicies())
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
        .arg(AGENT_CONSOLE_URL)
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

/// Where the agent console is hosted in these tests (`AgentConsoleUrl`), and its origin.
const AGENT_CONSOLE_URL: &str = "https://support.example.com/agent/";
const AGENT_CONSOLE_ORIGIN: &str = "https://support.example.com";

/// Resolves what CloudFormation resolves in the CORS block: `Ref` to the CommaDelimitedList parameter (a list) and
/// to `AgentConsoleUrl`, `Fn::Join`, `Fn::Split`, `Fn::Select`.
fn resolve(value: &serde_json::Value, origins: &str) -> serde_json::Value {
    use serde_json::{json, Value as Json};
    if let Some(items) = value.as_array() {
        return Json::Array(items.iter().map(|v| resolve(v, origins)).collect());
    }
    let Some(object) = value.as_object() else {
        return value.clone();
    };
    if let Some(name) = object.get("Ref") {
        return match name.as_str() {
            Some("AllowedOrigins") => json!(origins.split(',').collect::<Vec<_>>()),
            Some("AgentConsoleUrl") => json!(AGENT_CONSOLE_URL),
            other => panic!("only the origins and the console's URL are referenced, not {other:?}"),
        };
    }
    if let Some(args) = object.get("Fn::Select") {
        let index = args[0]
            .as_u64()
            .or_else(|| args[0].as_str().and_then(|i| i.parse().ok()))
            .expect("an index") as usize;
        let list = resolve(&args[1], origins);
        return list[index].clone();
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
    // The widget's origins, then the agent console's (issue 23).
    let cases = [
        (
            "https://www.example.com",
            vec!["https://www.example.com", AGENT_CONSOLE_ORIGIN],
        ),
        (
            "https://www.example.com,https://shop.example.com",
            vec![
                "https://www.example.com",
                "https://shop.example.com",
                AGENT_CONSOLE_ORIGIN,
            ],
        ),
        ("*", vec!["*", AGENT_CONSOLE_ORIGIN]),
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
        assert_eq!(
            resolved["allowHeaders"],
            serde_json::json!(["content-type", "authorization"])
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
