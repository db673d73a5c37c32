//! The table and the functions: the table's schema is the code's, every function builds a workspace binary, no
//! secret sits in the environment, each function reads exactly its secrets.

use super::*;

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
            schema::NOTES_INDEX,
            schema::NOTES_INDEX_PARTITION_KEY,
            schema::NOTES_INDEX_SORT_KEY,
            schema::NOTES_INDEX_PROJECTION,
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
        "the queue, the notes' queue and the idle index"
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
        schema::NOTES_INDEX_PARTITION_KEY,
        schema::NOTES_INDEX_SORT_KEY,
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

/// Issue 23: `POST /agent-sessions` is behind the HTTP API's JWT authorizer, whose issuer and audience are the
/// stack's Cognito pool and app client unless `AgentOidcIssuer` names another provider; the pool lets nobody sign
/// themselves up, and its client is a public one for the authorization code flow back to the console only.
#[test]
fn agent_sessions_sit_behind_the_oidc_authorizer_of_the_cognito_pool_or_the_given_issuer() {
    let template = template();
    let tagged = |value: &Value, tag: &str| -> Value {
        match value {
            Value::Tagged(t) if t.tag == tag => t.value.clone(),
            other => panic!("expected !{tag}, got {other:?}"),
        }
    };
    let function = &template["Resources"]["AgentSessionsFunction"];
    let event = &function["Properties"]["Events"]["OpenSession"]["Properties"];
    assert_eq!(string(&event["Path"]), "/agent-sessions");
    assert_eq!(string(&event["Method"]), "POST");
    assert_eq!(string(&event["Auth"]["Authorizer"]), "OidcAuthorizer");
    let authorizer =
        &template["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["OidcAuthorizer"];
    assert_eq!(
        string(&authorizer["IdentitySource"]),
        "$request.header.Authorization"
    );
    let issuer = tagged(&authorizer["JwtConfiguration"]["issuer"], "If");
    assert_eq!(string(&issuer[0]), "UsesExternalIdp");
    assert_eq!(reference(&issuer[1]), Some("AgentOidcIssuer"));
    let cognito = tagged(&issuer[2], "Sub");
    assert!(
        string(&cognito).starts_with("https://cognito-idp.")
            && string(&cognito).ends_with("/${AgentUserPool}"),
        "{cognito:?}"
    );
    // The function checks the same issuer and audience itself.
    let env = &function["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env["AGENT_OIDC_ISSUER"],
        authorizer["JwtConfiguration"]["issuer"]
    );
    assert_eq!(
        env["AGENT_OIDC_AUDIENCE"],
        authorizer["JwtConfiguration"]["audience"][0]
    );
    // The registration and webhook routes stay public: no default authorizer.
    assert!(template["Resources"]["HttpApi"]["Properties"]["Auth"]
        .get("DefaultAuthorizer")
        .is_none());

    let pool = &template["Resources"]["AgentUserPool"];
    assert_eq!(string(&pool["Condition"]), "CreatesAgentPool");
    assert_eq!(
        pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        Value::Bool(true)
    );
    let client = &template["Resources"]["AgentUserPoolClient"]["Properties"];
    assert_eq!(client["GenerateSecret"], Value::Bool(false));
    assert_eq!(
        as_list(&client["AllowedOAuthFlows"])
            .into_iter()
            .map(string)
            .collect::<Vec<_>>(),
        ["code"]
    );
    assert_eq!(
        as_list(&client["CallbackURLs"])
            .into_iter()
            .filter_map(reference)
            .collect::<Vec<_>>(),
        ["AgentConsoleUrl"]
    );
    assert!(template["Resources"]["AgentUserPoolDomain"].is_mapping());
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
