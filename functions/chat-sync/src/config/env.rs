//! Where configuration values come from: a snapshot of the environment ([`Env`]), and the secrets it names by ARN
//! when deployed ([`SecretSource`], AWS Secrets Manager).

use super::error::ConfigError;
use secrecy::SecretString;
use std::collections::HashMap;
use std::time::Duration;

/// Where configuration values come from: a snapshot of the environment (tests pass their own map). Not `Debug`:
/// locally it holds secrets.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Overrides one variable (the dev server points the handlers at its sandboxes this way).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    /// Whether a variable is set to something non-blank.
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .map(str::to_owned)
            .ok_or_else(|| ConfigError::new(name, "is not set"))
    }

    pub fn optional(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    /// A base URL: http(s), no trailing slash.
    pub fn url(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        let value = self.optional(name, default);
        if !(value.starts_with("https://") || value.starts_with("http://")) {
            return Err(ConfigError::new(name, "must be an http(s) URL"));
        }
        Ok(value.trim_end_matches('/').to_owned())
    }

    pub fn seconds(
        &self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, range).map(Duration::from_secs)
    }

    pub fn millis(
        &self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, range).map(Duration::from_millis)
    }

    pub(crate) fn number(
        &self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value: u64 = raw
            .parse()
            .map_err(|_| ConfigError::new(name, format!("must be a whole number, got {raw:?}")))?;
        if !range.contains(&value) {
            return Err(ConfigError::new(
                name,
                format!("must be between {} and {}", range.start(), range.end()),
            ));
        }
        Ok(value)
    }

    /// A secret: `NAME` itself (local), or the secret whose ARN is in `NAME_SECRET_ARN` (deployed).
    pub async fn secret(
        &self,
        name: &str,
        secrets: &dyn SecretSource,
    ) -> Result<SecretString, ConfigError> {
        self.optional_secret(name, secrets)
            .await?
            .ok_or_else(|| ConfigError::new(name, format!("is not set (nor is {name}_SECRET_ARN)")))
    }

    /// [`Self::secret`] for a secret that may be absent: `None` when neither variable is set.
    pub async fn optional_secret(
        &self,
        name: &str,
        secrets: &dyn SecretSource,
    ) -> Result<Option<SecretString>, ConfigError> {
        if let Some(value) = self.get(name) {
            return Ok(Some(SecretString::from(value.to_owned())));
        }
        let arn_variable = format!("{name}_SECRET_ARN");
        let Some(arn) = self.get(&arn_variable) else {
            return Ok(None);
        };
        secrets
            .secret_string(arn)
            .await
            .map(|v| Some(SecretString::from(v.trim().to_owned())))
            .map_err(|problem| ConfigError::new(&arn_variable, problem))
    }

    /// `true` or `false` (default `default`).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ConfigError::new(
                name,
                format!("must be true or false, got {other:?}"),
            )),
        }
    }
}

/// Reads a secret's value by ARN (AWS Secrets Manager when deployed).
#[async_trait::async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret_string(&self, arn: &str) -> Result<String, String>;
}

/// AWS Secrets Manager.
pub struct SecretsManager(aws_sdk_secretsmanager::Client);

impl SecretsManager {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self(aws_sdk_secretsmanager::Client::new(config))
    }
}

#[async_trait::async_trait]
impl SecretSource for SecretsManager {
    async fn secret_string(&self, arn: &str) -> Result<String, String> {
        let output = self
            .0
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
                format!(
                    "could not be read from Secrets Manager ({})",
                    e.code().unwrap_or("unreachable")
                )
            })?;
        output
            .secret_string
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| "names a secret with no string value".to_owned())
    }
}
