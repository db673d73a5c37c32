//! The baseline: what the original tutorial did on every webhook — read the contact's transcript from HubSpot,
//! append the line, write it back. No lock, no idempotency: concurrent or duplicated deliveries lose or repeat lines.

use crate::serve::HttpHandler;
use chat_sync::adapters::dynamo::DynamoStore;
use chat_sync::adapters::hubspot::{objects, TRANSCRIPT_PROPERTY};
use chat_sync::domain::line::render_line;
use chat_sync::domain::{Role, StoredMessage};
use chat_sync::handlers::webhook::{parse_event, Parsed};
use chat_sync::ports::Channels;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use std::sync::Arc;

pub struct Baseline {
    pub store: Arc<DynamoStore>,
    pub http: reqwest::Client,
    pub hubspot_url: String,
    pub token: String,
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = code;
    response
}

impl Baseline {
    async fn append(&self, request: &Request) -> Result<(), StatusCode> {
        let body: &[u8] = match request.body() {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        let Ok(Parsed::Change(change)) = parse_event(body) else {
            return Ok(());
        };
        let mapping = self
            .store
            .channel(&change.channel)
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?
            .ok_or(StatusCode::OK)?;
        let url = format!(
            "{}{}/{}",
            self.hubspot_url,
            objects("contacts"),
            mapping.contact_id
        );
        let current: serde_json::Value = self
            .http
            .get(&url)
            .query(&[("properties", TRANSCRIPT_PROPERTY)])
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|_| StatusCode::BAD_GATEWAY)?
            .error_for_status()
            .map_err(|_| StatusCode::BAD_GATEWAY)?
            .json()
            .await
            .map_err(|_| StatusCode::BAD_GATEWAY)?;
        let mut transcript = current["properties"][TRANSCRIPT_PROPERTY]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let role = if change.author.id == mapping.visitor_id.as_str() {
            Role::Visitor
        } else {
            Role::Agent
        };
        let line = render_line(&StoredMessage {
            message_id: change.message_id,
            cid: change.channel.cid(),
            author_name: change.author.name,
            role,
            text: change.text,
            attachments: change.attachments,
            created_at: change.created_at,
            edited: false,
            deleted: false,
            restored: false,
            removed: false,
        });
        if !transcript.is_empty() {
            transcript.push('\n');
        }
        transcript.push_str(&line);
        self.http
            .patch(&url)
            .bearer_auth(&self.token)
            .json(&json!({ "properties": { TRANSCRIPT_PROPERTY: transcript } }))
            .send()
            .await
            .map_err(|_| StatusCode::BAD_GATEWAY)?
            .error_for_status()
            .map_err(|_| StatusCode::BAD_GATEWAY)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl HttpHandler for Baseline {
    async fn call(&self, request: Request) -> Response<Body> {
        match self.append(&request).await {
            Ok(()) => status(StatusCode::OK),
            // The tutorial answered 500 when HubSpot failed, so Stream retried the whole append.
            Err(StatusCode::OK) => status(StatusCode::OK),
            Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}
