//! chat-sync's integration tests, one binary: the handlers end to end through the real HTTP clients, against the
//! HubSpot and Stream doubles and one DynamoDB Local for the whole binary (each test on a table of its own).
//! `support` holds the app under test ([`support::TestApp`]) and the helpers the modules share.

mod agent_sessions;
mod at_scale;
mod bad_input;
mod concurrency;
mod erasure;
mod faults;
mod note_wait;
mod notes;
mod properties;
mod registration;
mod retention;
mod support;
mod webhook;
