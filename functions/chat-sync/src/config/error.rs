//! The one error configuration has: which variable, and what is wrong with it. A file of its own, depending on
//! nothing, so the adapters that fail at start-up (the HTTP client's TLS backend) report in it without importing
//! the configuration, which imports them for their defaults.

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {variable} {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &str, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            problem: problem.into(),
        }
    }
}
