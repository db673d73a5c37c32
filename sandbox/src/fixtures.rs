//! The credentials the doubles are started with and the app is given when it runs against them: the tests, the
//! benchmarks, `make dev` and `make invoke-env` take them from here, and nowhere else. They guard loopback ports and
//! signed sample files, so they are public; production code never sees them (chat-sync has this crate only as a
//! dev-dependency).

/// The Stream API key of the sample events in `events/`, the tests and the benchmarks.
pub const STREAM_KEY: &str = "local-api-key";
/// The secret the Stream webhook files in `events/` are signed with (`sign-events`), so they verify in the tests,
/// the benchmarks and `make invoke-env`.
pub const STREAM_SECRET: &str = "local-stream-secret-for-events";
/// The HubSpot app client secret the `hubspot-webhook-*.json` files in `events/` are signed with.
pub const HUBSPOT_CLIENT_SECRET: &str = "local-hubspot-client-secret-for-events";
/// The HubSpot private-app token of the tests and the benchmarks.
pub const HUBSPOT_TOKEN: &str = "pat-na1-test-token";
/// The site's identity-verification secret (`IDENTITY_SECRET`) the test app checks `identityToken`s with.
pub const IDENTITY_SECRET: &str = "test-identity-secret-0123456789abcdef";

/// `make dev`'s sandbox (the README names them, for pointing other tools at the doubles).
pub const SANDBOX_HUBSPOT_TOKEN: &str = "sandbox-hubspot-token";
pub const SANDBOX_STREAM_KEY: &str = "sandbox-api-key";
pub const SANDBOX_STREAM_SECRET: &str = "sandbox-api-secret";
/// The sandbox HubSpot app's client secret: it signs the HubSpot webhooks `make dev` receives.
pub const SANDBOX_HUBSPOT_CLIENT_SECRET: &str = "sandbox-hubspot-client-secret";

/// The agent console's client id at `make dev`'s sandbox identity provider.
pub const SANDBOX_AGENT_CLIENT_ID: &str = "chat-sync-agent-console";
/// The agents who may sign in to the console in `make dev`'s sandbox, and their password (the sign-in page and the
/// README say so).
pub const SANDBOX_AGENTS: [(&str, &str); 2] = [
    ("ada@agents.example", "Ada Agent"),
    ("bob@agents.example", "Bob Agent"),
];
pub const SANDBOX_AGENT_PASSWORD: &str = "sandbox-password";
