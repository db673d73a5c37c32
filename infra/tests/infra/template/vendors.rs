//! The HubSpot app as code (scopes, webhooks, HubSpot's own parser) and the vendors' OpenAPI documents.

use super::*;

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
        .current_dir(root)
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
