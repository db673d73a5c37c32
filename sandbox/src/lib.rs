//! Local HTTP test doubles of the HubSpot CRM and Stream Chat APIs and of an OpenID Connect provider, a DynamoDB
//! Local launcher, and a Secrets Manager serving test secrets (for `sam local`).
//!
//! The doubles reproduce the behaviour the app depends on (auth, validation, error shapes, concurrency
//! semantics, webhook signing and retries) so black-box tests, benchmarks and `make dev` exercise the
//! real client code over real HTTP, with fault injection ([`faults::Faults`]) for the unhappy paths.

mod double;
pub mod dynamodb_local;
pub mod faults;
pub mod fixtures;
pub mod hubspot;
pub mod inspect;
pub mod oidc;
pub mod secrets_manager;
pub mod stream;
mod support;

pub use double::Double;
pub use dynamodb_local::DynamoDbLocal;
pub use hubspot::HubSpotDouble;
pub use oidc::OidcDouble;
pub use secrets_manager::SecretsManagerDouble;
pub use stream::StreamDouble;
pub use support::{RecordedCall, TRAFFIC_DIR_VAR};
