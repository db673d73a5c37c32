//! Adapters: the HTTP clients and the DynamoDB store that implement the ports.

pub mod backoff;
pub mod dynamo;
pub mod http;
pub mod hubspot;
pub mod oidc;
pub mod stream;
pub mod stream_access;
