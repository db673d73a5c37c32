//! Setup and local tooling for chat-sync: `setup`, `sign-events`, the `dev` server and the `bench` harness.

pub mod backlog;
pub mod bench;
pub mod dev;
#[cfg(test)]
mod docs_map;
pub mod erase;
pub mod event_table;
pub mod invoke_env;
pub mod lambda_watch;
pub mod runtime_api;
pub mod sam_local;
pub mod serve;
pub mod setup;
