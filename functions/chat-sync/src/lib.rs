//! chat-sync: website chat conversations saved into HubSpot contacts.
//!
//! Hexagonal layout: `domain` holds the values and the pure transcript renderer, `ports` the traits the handlers
//! need, `adapters` the HubSpot and Stream clients and the DynamoDB store, `handlers` the Lambda entry points
//! (plain async fns), and `app` assembles them: from configuration for the thin `main.rs` of each Lambda, from the
//! sandboxes for `make dev`, the tests and the benchmarks.

pub mod adapters;
pub mod app;
pub mod budget;
pub mod config;
pub mod domain;
pub mod erasure;
pub mod handlers;
pub mod lambda;
pub mod metrics;
pub mod ports;
pub mod retention;
pub mod sync;
pub mod telemetry;
pub mod throttle;
