//! Sandbox or live: decided by which credentials are in the environment.

use chat_sync::config::Env;

/// What live mode needs; with none of them set, the dev server runs against the local doubles.
pub const CREDENTIALS: [&str; 3] = [
    "HUBSPOT_ACCESS_TOKEN",
    "STREAM_API_KEY",
    "STREAM_API_SECRET",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Local HubSpot and Stream doubles: no accounts, nothing leaves the machine.
    Sandbox,
    /// The real HubSpot and Stream, with the credentials from the environment.
    Live,
}

/// Some credentials set but not all: most likely a typo, and running half live would surprise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "live mode needs HUBSPOT_ACCESS_TOKEN, STREAM_API_KEY and STREAM_API_SECRET; missing: {}. \
     Set them all to use the real services, or none to run against the local sandbox",
    self.missing.join(", ")
)]
pub struct PartialCredentials {
    pub missing: Vec<&'static str>,
}

impl Mode {
    pub fn detect(env: &Env) -> Result<Self, PartialCredentials> {
        let missing: Vec<&'static str> = CREDENTIALS
            .into_iter()
            .filter(|name| !env.is_set(name))
            .collect();
        match missing.len() {
            0 => Ok(Mode::Live),
            n if n == CREDENTIALS.len() => Ok(Mode::Sandbox),
            _ => Err(PartialCredentials { missing }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sandbox => "sandbox",
            Mode::Live => "live",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_credentials_means_sandbox_and_all_means_live() {
        assert_eq!(Mode::detect(&Env::default()), Ok(Mode::Sandbox));
        let blank = Env::from_pairs([("HUBSPOT_ACCESS_TOKEN", "  ")]);
        assert_eq!(Mode::detect(&blank), Ok(Mode::Sandbox));
        let all = Env::from_pairs(CREDENTIALS.map(|name| (name, "x")));
        assert_eq!(Mode::detect(&all), Ok(Mode::Live));
    }

    #[test]
    fn some_credentials_name_the_missing_ones() {
        let env = Env::from_pairs([("STREAM_API_KEY", "key")]);
        let error = Mode::detect(&env).expect_err("partial");
        assert_eq!(
            error.missing,
            vec!["HUBSPOT_ACCESS_TOKEN", "STREAM_API_SECRET"]
        );
        assert!(
            error
                .to_string()
                .contains("missing: HUBSPOT_ACCESS_TOKEN, STREAM_API_SECRET."),
            "{error}"
        );
    }
}
