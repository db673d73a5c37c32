//! infra's integration tests, one binary: the operators' commands (`backlog`, `erase`, `setup`), `make dev` and
//! `make invoke-env` as a person uses them, the bench's capacity meter, and drift checks of the template and the
//! HubSpot app against the code.
//! One DynamoDB Local serves the whole binary (each test on a table of its own); `support` holds what they share.

mod backlog;
mod bench;
mod dev;
mod erase;
mod invoke;
mod meter;
mod setup;
mod support;
mod template;
