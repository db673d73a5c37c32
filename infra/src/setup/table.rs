//! The local table: created in DynamoDB Local with the schema template.yaml deploys.

use super::outcome::{Outcome, SetupError};
use super::{Setup, TableStep};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use chat_sync::adapters::dynamo::DynamoStore;
impl Setup {
    pub(super) async fn local_table(&self, step: &TableStep) -> Result<Outcome, SetupError> {
        let (table, endpoint) = (step.table.as_str(), step.endpoint.as_str());
        let client = chat_sync::app::local_dynamodb(endpoint).await;
        let failed = |detail: String| SetupError::DynamoDb {
            endpoint: endpoint.to_owned(),
            detail,
        };
        let table = table.to_owned();
        if self.dry_run {
            return match client.describe_table().table_name(&table).send().await {
                Ok(_) => Ok(Outcome::TableAlreadyThere { table }),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    Ok(Outcome::TableWouldBeCreated { table })
                }
                Err(e) => Err(failed(dynamodb_detail(&e))),
            };
        }
        let created = DynamoStore::new(client, table.clone())
            .create_table()
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(if created {
            Outcome::TableCreated { table }
        } else {
            Outcome::TableAlreadyThere { table }
        })
    }
}

fn dynamodb_detail(error: &SdkError<DescribeTableError>) -> String {
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("ServiceError"),
            service.message().unwrap_or_default()
        ),
        None => {
            // Connection refused and the like: the SDK's Display hides the cause, its source chain has it.
            let mut detail = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                detail = format!("{detail}: {cause}");
                source = cause.source();
            }
            detail.chars().take(300).collect()
        }
    }
}
