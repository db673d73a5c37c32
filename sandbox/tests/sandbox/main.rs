//! The sandbox's integration tests, one binary: the HubSpot and Stream doubles behave like the real services where
//! the app depends on them (Stream's official SDK included), and DynamoDB Local starts, restarts and stops.

mod dynamodb_local;
mod hubspot;
mod stream;
mod stream_sdk;
