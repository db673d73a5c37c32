//! The Lambda handlers: plain async fns over `lambda_http::Request`, callable from tests and the dev server.

pub mod agent_sessions;
pub mod hubspot_webhooks;
mod mapping_cache;
pub mod registration;
mod response;
pub mod sweeper;
pub mod webhook;

pub use response::ApiError;
