//! The deployed roles, enforced in the tests.
//!
//! Once deployed, IAM authorises every DynamoDB request a Lambda sends against the Lambda's role in template.yaml,
//! and each item of a transaction as its own action (there is no `dynamodb:TransactWriteItems` permission).
//! DynamoDB Local and `sam local` enforce no role, so a request a role does not grant would fail only in AWS. Each
//! handler of the test app therefore reaches DynamoDB through a client whose [`RoleGuard`] refuses what its
//! Lambda's role does not grant, as IAM would: the action, the table or the index, and the role's
//! `dynamodb:LeadingKeys` condition on the item's partition key.
//!
//! A refused request fails like any request, and is also kept in [`Refusals`]: a handler may swallow a failed
//! write (the flush after a webhook's answer does), so the test app fails its test at the end if anything was
//! refused, whatever the test itself checked.
//!
//! Invariant: the guard never grants more than IAM would. It reads `Allow` statements whose `Resource` names the
//! table (`!GetAtt Table.Arn`) or an index (`!Sub ${Table.Arn}/index/<name>`), and their `dynamodb:LeadingKeys`
//! condition; a statement naming the table with anything else (a `Deny`, another condition key) stops the load.
//! A request whose partition key it does not read (a query of an index) is not granted by a statement with a key
//! condition.

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_norway::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The Lambdas of template.yaml whose handlers the test app builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lambda {
    Registration,
    Webhook,
    Sweeper,
    HubSpotWebhooks,
    AgentSessions,
}

impl Lambda {
    const ALL: [Lambda; 5] = [
        Lambda::Registration,
        Lambda::Webhook,
        Lambda::Sweeper,
        Lambda::HubSpotWebhooks,
        Lambda::AgentSessions,
    ];

    /// Its function's logical id in template.yaml.
    fn function(self) -> &'static str {
        match self {
            Lambda::Registration => "RegistrationFunction",
            Lambda::Webhook => "WebhookFunction",
            Lambda::Sweeper => "SweeperFunction",
            Lambda::HubSpotWebhooks => "HubSpotWebhooksFunction",
            Lambda::AgentSessions => "AgentSessionsFunction",
        }
    }
}

/// What a statement may name: the table, or one of its indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Table,
    Index(String),
}

/// An `Allow` statement of a role, as far as it concerns the table.
#[derive(Debug)]
struct Statement {
    actions: Vec<String>,
    targets: Vec<Target>,
    /// `dynamodb:LeadingKeys` patterns (`*` only at the end), if the statement has the condition.
    leading_keys: Option<Vec<String>>,
}

impl Statement {
    fn grants(&self, access: &Access) -> bool {
        if !self.actions.iter().any(|action| action == access.action)
            || !self.targets.contains(&access.target)
        {
            return false;
        }
        let Some(patterns) = &self.leading_keys else {
            return true;
        };
        let Some(key) = &access.key else {
            return false;
        };
        patterns
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => key.starts_with(prefix),
                None => key == pattern,
            })
    }
}

/// A Lambda's role, as IAM reads it for the table.
#[derive(Debug)]
pub struct Role {
    lambda: Lambda,
    statements: Vec<Statement>,
}

impl Role {
    /// The role of `lambda` in template.yaml (read once per test binary).
    pub fn of(lambda: Lambda) -> Arc<Role> {
        static ROLES: OnceLock<HashMap<Lambda, Arc<Role>>> = OnceLock::new();
        ROLES
            .get_or_init(|| {
                let path = format!("{}/../../template.yaml", env!("CARGO_MANIFEST_DIR"));
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                let template: Value =
                    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
                Lambda::ALL
                    .into_iter()
                    .map(|lambda| (lambda, Arc::new(Role::load(&template, lambda))))
                    .collect()
            })
            .get(&lambda)
            .cloned()
            .expect("every Lambda's role is loaded")
    }

    fn load(template: &Value, lambda: Lambda) -> Role {
        let function = lambda.function();
        let role = match &template["Resources"][function]["Properties"]["Role"] {
            Value::Tagged(tagged) if tagged.tag == "GetAtt" => tagged
                .value
                .as_str()
                .and_then(|path| path.strip_suffix(".Arn"))
                .unwrap_or_else(|| panic!("{function}: Role is not !GetAtt <role>.Arn")),
            other => panic!("{function}: Role is not !GetAtt <role>.Arn: {other:?}"),
        };
        let policies = template["Resources"][role]["Properties"]["Policies"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{role} has no inline policies"));
        let statements = policies
            .iter()
            .flat_map(|policy| list(&policy["PolicyDocument"]["Statement"]))
            .filter_map(|statement| Self::statement(role, statement))
            .collect();
        Role { lambda, statements }
    }

    /// The statement's grants on the table, or `None` if it names neither the table nor an index.
    fn statement(role: &str, statement: &Value) -> Option<Statement> {
        let targets: Vec<Target> = list(&statement["Resource"])
            .into_iter()
            .filter_map(target)
            .collect();
        if targets.is_empty() {
            return None;
        }
        assert_eq!(
            statement["Effect"].as_str(),
            Some("Allow"),
            "{role}: the guard reads only Allow statements on the table"
        );
        let strings = |value: &Value| -> Vec<String> {
            list(value)
                .into_iter()
                .map(|v| {
                    v.as_str()
                        .unwrap_or_else(|| panic!("{role}: expected a string, got {v:?}"))
                        .to_owned()
                })
                .collect()
        };
        let condition = &statement["Condition"];
        let leading_keys = match condition.as_mapping() {
            None => None,
            Some(operators) => {
                let mut patterns = Vec::new();
                for (operator, keys) in operators {
                    let operator = operator.as_str().unwrap_or_default();
                    assert!(
                        matches!(
                            operator,
                            "ForAllValues:StringEquals" | "ForAllValues:StringLike"
                        ),
                        "{role}: the guard does not read the condition operator {operator}"
                    );
                    for (key, values) in keys.as_mapping().into_iter().flatten() {
                        assert_eq!(
                            key.as_str(),
                            Some("dynamodb:LeadingKeys"),
                            "{role}: the guard reads only dynamodb:LeadingKeys conditions"
                        );
                        let values = strings(values);
                        assert!(
                            operator.ends_with("StringLike")
                                || values.iter().all(|v| !v.contains('*')),
                            "{role}: StringEquals does not match a pattern"
                        );
                        patterns.extend(values);
                    }
                }
                Some(patterns)
            }
        };
        Some(Statement {
            actions: strings(&statement["Action"]),
            targets,
            leading_keys,
        })
    }

    fn grants(&self, access: &Access) -> bool {
        self.statements
            .iter()
            .any(|statement| statement.grants(access))
    }
}

/// A scalar or a list, as a list.
fn list(value: &Value) -> Vec<&Value> {
    match value.as_sequence() {
        Some(items) => items.iter().collect(),
        None => vec![value],
    }
}

/// The table or index a statement's `Resource` entry names, if it names one.
fn target(resource: &Value) -> Option<Target> {
    let Value::Tagged(tagged) = resource else {
        return None;
    };
    let text = tagged.value.as_str()?;
    if tagged.tag == "GetAtt" {
        return (text == "Table.Arn").then_some(Target::Table);
    }
    if tagged.tag == "Sub" {
        let index = text.strip_prefix("${Table.Arn}/index/")?;
        assert!(!index.contains('*'), "a wildcard index: {text}");
        return Some(Target::Index(index.to_owned()));
    }
    None
}

/// One authorisation IAM makes for a request: an action on the table or an index, for an item whose partition
/// key is `key` (`None` where the guard does not read one: a query of an index, a scan).
#[derive(Debug)]
struct Access {
    action: &'static str,
    target: Target,
    key: Option<String>,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.action)?;
        if let Target::Index(index) = &self.target {
            write!(f, " on the index {index}")?;
        }
        match &self.key {
            Some(key) => write!(f, " on {key}"),
            None => Ok(()),
        }
    }
}

type Item = HashMap<String, AttributeValue>;

fn partition(item: &Item) -> Option<String> {
    item.get("pk").and_then(|pk| pk.as_s().ok()).cloned()
}

fn on_item(action: &'static str, item: &Item) -> Access {
    Access {
        action,
        target: Target::Table,
        key: partition(item),
    }
}

/// The partition key a `#pk = :pk` key condition names (the first comparison, before any `AND`).
fn queried_partition(
    condition: Option<&str>,
    names: Option<&HashMap<String, String>>,
    values: Option<&Item>,
) -> Option<String> {
    let first = condition?.split(" AND ").next()?;
    let (name, value) = first.split_once('=')?;
    let name = name.trim();
    let name = match name.strip_prefix('#') {
        Some(_) => names?.get(name)?.as_str(),
        None => name,
    };
    if name != "pk" {
        return None;
    }
    values?.get(value.trim())?.as_s().ok().cloned()
}

/// What IAM authorises for `input`, a request to `table`; an error for a request the guard does not model or to
/// another table (no role here names one).
fn accesses(
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
    table: &str,
) -> Result<Vec<Access>, String> {
    use aws_sdk_dynamodb::operation::{
        batch_get_item::BatchGetItemInput, batch_write_item::BatchWriteItemInput,
        delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput,
        query::QueryInput, scan::ScanInput, transact_get_items::TransactGetItemsInput,
        transact_write_items::TransactWriteItemsInput, update_item::UpdateItemInput,
    };
    let on = |name: Option<&str>| match name {
        Some(name) if name == table => Ok(()),
        other => Err(format!(
            "a request to the table {other:?}, which no role names"
        )),
    };
    let empty = Item::new();
    if let Some(input) = input.downcast_ref::<GetItemInput>() {
        on(input.table_name())?;
        return Ok(vec![on_item(
            "dynamodb:GetItem",
            input.key().unwrap_or(&empty),
        )]);
    }
    if let Some(input) = input.downcast_ref::<PutItemInput>() {
        on(input.table_name())?;
        return Ok(vec![on_item(
            "dynamodb:PutItem",
            input.item().unwrap_or(&empty),
        )]);
    }
    if let Some(input) = input.downcast_ref::<UpdateItemInput>() {
        on(input.table_name())?;
        return Ok(vec![on_item(
            "dynamodb:UpdateItem",
            input.key().unwrap_or(&empty),
        )]);
    }
    if let Some(input) = input.downcast_ref::<DeleteItemInput>() {
        on(input.table_name())?;
        return Ok(vec![on_item(
            "dynamodb:DeleteItem",
            input.key().unwrap_or(&empty),
        )]);
    }
    if let Some(input) = input.downcast_ref::<QueryInput>() {
        on(input.table_name())?;
        return Ok(vec![match input.index_name() {
            Some(index) => Access {
                action: "dynamodb:Query",
                target: Target::Index(index.to_owned()),
                key: None,
            },
            None => Access {
                action: "dynamodb:Query",
                target: Target::Table,
                key: queried_partition(
                    input.key_condition_expression(),
                    input.expression_attribute_names(),
                    input.expression_attribute_values(),
                ),
            },
        }]);
    }
    if let Some(input) = input.downcast_ref::<ScanInput>() {
        on(input.table_name())?;
        return Ok(vec![Access {
            action: "dynamodb:Scan",
            target: input
                .index_name()
                .map_or(Target::Table, |index| Target::Index(index.to_owned())),
            key: None,
        }]);
    }
    if let Some(input) = input.downcast_ref::<BatchGetItemInput>() {
        let mut accesses = Vec::new();
        for (name, keys) in input.request_items().into_iter().flatten() {
            on(Some(name))?;
            for key in keys.keys() {
                accesses.push(on_item("dynamodb:BatchGetItem", key));
            }
        }
        return Ok(accesses);
    }
    if let Some(input) = input.downcast_ref::<BatchWriteItemInput>() {
        let mut accesses = Vec::new();
        for (name, writes) in input.request_items().into_iter().flatten() {
            on(Some(name))?;
            for write in writes {
                let item = write
                    .put_request()
                    .map(|put| put.item())
                    .or(write.delete_request().map(|delete| delete.key()));
                accesses.push(on_item("dynamodb:BatchWriteItem", item.unwrap_or(&empty)));
            }
        }
        return Ok(accesses);
    }
    if let Some(input) = input.downcast_ref::<TransactWriteItemsInput>() {
        let mut accesses = Vec::new();
        for item in input.transact_items() {
            let (action, name, key) = if let Some(put) = item.put() {
                ("dynamodb:PutItem", put.table_name(), put.item())
            } else if let Some(update) = item.update() {
                ("dynamodb:UpdateItem", update.table_name(), update.key())
            } else if let Some(delete) = item.delete() {
                ("dynamodb:DeleteItem", delete.table_name(), delete.key())
            } else if let Some(check) = item.condition_check() {
                (
                    "dynamodb:ConditionCheckItem",
                    check.table_name(),
                    check.key(),
                )
            } else {
                return Err("a transaction item the guard does not model".into());
            };
            on(Some(name))?;
            accesses.push(on_item(action, key));
        }
        return Ok(accesses);
    }
    if let Some(input) = input.downcast_ref::<TransactGetItemsInput>() {
        let mut accesses = Vec::new();
        for item in input.transact_items() {
            let get = item
                .get()
                .ok_or("a transaction item the guard does not model")?;
            on(Some(get.table_name()))?;
            accesses.push(on_item("dynamodb:GetItem", get.key()));
        }
        return Ok(accesses);
    }
    Err("an operation the guard does not model (add it to support::roles)".into())
}

/// Everything a test app's guards refused, as messages.
pub type Refusals = Arc<Mutex<Vec<String>>>;

/// Refuses, as IAM would once deployed, each DynamoDB request its Lambda's role does not grant (module docs).
#[derive(Debug, Clone)]
pub struct RoleGuard {
    role: Arc<Role>,
    table: String,
    refused: Refusals,
}

impl RoleGuard {
    pub fn new(lambda: Lambda, table: &str, refused: Refusals) -> Self {
        Self {
            role: Role::of(lambda),
            table: table.to_owned(),
            refused,
        }
    }

    /// `client` with this guard before every request.
    pub fn guard(self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        let config = client.config().to_builder().interceptor(self).build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

impl Intercept for RoleGuard {
    fn name(&self) -> &'static str {
        "role-guard"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let refusal = match accesses(context.input(), &self.table) {
            Ok(accesses) => {
                let denied: Vec<String> = accesses
                    .iter()
                    .filter(|access| !self.role.grants(access))
                    .map(ToString::to_string)
                    .collect();
                if denied.is_empty() {
                    return Ok(());
                }
                format!(
                    "the role of {} does not grant {}",
                    self.role.lambda.function(),
                    denied.join(", ")
                )
            }
            Err(problem) => format!("{}: {problem}", self.role.lambda.function()),
        };
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(refusal.clone());
        Err(refusal.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::TestApp;
    use chat_sync::domain::ContactId;
    use chat_sync::ports::SyncRecords;

    fn access(action: &'static str, key: &str) -> Access {
        Access {
            action,
            target: Target::Table,
            key: Some(key.to_owned()),
        }
    }

    /// The roles as read from template.yaml: actions, the table against its indexes, and the leading keys.
    #[test]
    fn a_role_grants_its_actions_on_its_resources_and_keys_only() {
        let registration = Role::of(Lambda::Registration);
        assert!(registration.grants(&access("dynamodb:UpdateItem", "BUDGET#hubspot")));
        assert!(registration.grants(&access("dynamodb:UpdateItem", "CONTACT#1001")));
        assert!(registration.grants(&access("dynamodb:GetItem", "THROTTLE#ip#ab12")));
        // Its GetItem statements are keyed to the budget, the throttles and the contacts' sync records (the epoch
        // a new conversation joins): not to a channel's mapping.
        assert!(registration.grants(&access("dynamodb:GetItem", "CONTACT#1001")));
        assert!(!registration.grants(&access("dynamodb:GetItem", "CHANNEL#messaging:x")));
        assert!(!registration.grants(&access("dynamodb:DeleteItem", "CONTACT#1001")));

        let webhook = Role::of(Lambda::Webhook);
        let queue = |index: &str| Access {
            action: "dynamodb:Query",
            target: Target::Index(index.to_owned()),
            key: None,
        };
        assert!(webhook.grants(&queue("dirty-contacts")));
        assert!(!webhook.grants(&queue("idle-contacts")));
        assert!(!webhook.grants(&access("dynamodb:BatchWriteItem", "CONTACT#1001")));
        assert!(Role::of(Lambda::Sweeper).grants(&queue("idle-contacts")));
        assert!(!Role::of(Lambda::AgentSessions).grants(&access("dynamodb:GetItem", "CONTACT#1")));
    }

    #[test]
    fn a_query_names_the_partition_of_its_key_condition() {
        let names = HashMap::from([("#pk".to_owned(), "pk".to_owned())]);
        let values = Item::from([(":pk".to_owned(), AttributeValue::S("CONTACT#7".into()))]);
        assert_eq!(
            queried_partition(
                Some("#pk = :pk AND begins_with(#sk, :m)"),
                Some(&names),
                Some(&values)
            ),
            Some("CONTACT#7".to_owned())
        );
        assert_eq!(
            queried_partition(Some("#queue = :pk"), Some(&names), Some(&values)),
            None
        );
    }

    /// A store reaching the table as a role that does not grant a request is refused, and the refusal is kept for
    /// the test app's check; the same request as a role that grants it goes through.
    #[tokio::test]
    async fn a_request_the_role_does_not_grant_is_refused_and_kept() {
        let app = TestApp::start().await;
        let contact = ContactId::parse("1001").expect("valid");
        app.store_as(Lambda::Webhook)
            .sync_state(&contact)
            .await
            .expect("the webhook's role reads sync records");
        assert!(app.take_refusals().is_empty());

        // The agents' sessions reach no item of the table.
        let refused = app
            .store_as(Lambda::AgentSessions)
            .sync_state(&contact)
            .await;
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(
            app.take_refusals(),
            [format!(
                "the role of {} does not grant dynamodb:GetItem on CONTACT#1001",
                Lambda::AgentSessions.function()
            )],
        );
    }
}
