//! The command line: which steps to run, with what.

use super::DEFAULT_DYNAMODB_ENDPOINT;
pub const USAGE: &str = "\
Usage: setup [--dry-run] [--hubspot] [--stream-webhook URL] [--stream-access [--confine-other-types] [--enable-auth-checks]] [--local-table NAME [--dynamodb-endpoint URL]]

Steps (any combination, at least one):
  --hubspot                 create the chat_transcript contact property in HubSpot and check the app's
                            scopes (contacts and notes); names any that are missing
  --stream-webhook URL      point Stream's webhook at URL (the stack's WebhookFunctionUrl output);
                            other hooks and settings are kept
  --stream-access           create the support agent if missing (else set only its name; never its role or
                            profile) and restrict what a visitor's token may do on the channel type; says on
                            which other channel types a visitor's token may still create channels
  --confine-other-types     with --stream-access: take channel creation from visitors on those other types too
                            (for a Stream app that serves only chat-sync)
  --enable-auth-checks      with --stream-access: switch Stream's disable_auth_checks and
                            disable_permissions_checks off if either is on (otherwise setup stops: with either
                            on, nothing confines a visitor)
  --local-table NAME        create the table in DynamoDB Local
  --dynamodb-endpoint URL   DynamoDB Local's address (default http://127.0.0.1:8000)

Options:
  --dry-run                 say what would change; make only read-only calls
  -h, --help                show this help

Environment:
  HUBSPOT_ACCESS_TOKEN      for --hubspot (or HUBSPOT_ACCESS_TOKEN_SECRET_ARN, read from Secrets Manager)
  STREAM_API_KEY            for --stream-webhook
  STREAM_API_SECRET         for --stream-webhook (or STREAM_API_SECRET_SECRET_ARN)
  SUPPORT_AGENT_ID, SUPPORT_AGENT_NAME, STREAM_CHANNEL_TYPE   for --stream-access (default support-agent,
                            Support, messaging)
  HUBSPOT_BASE_URL, STREAM_BASE_URL   API addresses (default: the public APIs)
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub hubspot: bool,
    pub stream_webhook: Option<String>,
    pub stream_access: bool,
    /// With `stream_access`: no channel creation for visitors on the app's other channel types either.
    pub confine_other_types: bool,
    /// With `stream_access`: switch Stream's auth and permission checks back on if either is off.
    pub enable_auth_checks: bool,
    pub local_table: Option<String>,
    pub dynamodb_endpoint: String,
    pub dry_run: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hubspot: false,
            stream_webhook: None,
            stream_access: false,
            confine_other_types: false,
            enable_auth_checks: false,
            local_table: None,
            dynamodb_endpoint: DEFAULT_DYNAMODB_ENDPOINT.to_owned(),
            dry_run: false,
        }
    }
}

impl Options {
    pub fn has_steps(&self) -> bool {
        self.hubspot
            || self.stream_webhook.is_some()
            || self.stream_access
            || self.local_table.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Run(Options),
}

/// Parses the arguments (without the program name). Accepts `--flag value` and `--flag=value`.
pub fn parse_args<I>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
{
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let switch = matches!(
            flag.as_str(),
            "-h" | "--help"
                | "--dry-run"
                | "--hubspot"
                | "--stream-access"
                | "--confine-other-types"
                | "--enable-auth-checks"
        );
        if switch && inline.is_some() {
            return Err(format!("{flag} takes no value"));
        }
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{flag} needs {what}"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--dry-run" => options.dry_run = true,
            "--hubspot" => options.hubspot = true,
            "--stream-access" => options.stream_access = true,
            "--confine-other-types" => options.confine_other_types = true,
            "--enable-auth-checks" => options.enable_auth_checks = true,
            "--stream-webhook" | "--webhook-url" => {
                options.stream_webhook = Some(webhook_url(&flag, value("a URL")?)?);
            }
            "--local-table" => options.local_table = Some(table_name(value("a table name")?)?),
            "--dynamodb-endpoint" => {
                options.dynamodb_endpoint = http_url(&flag, &value("a URL")?)?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.confine_other_types && !options.stream_access {
        return Err("--confine-other-types goes with --stream-access".into());
    }
    if options.enable_auth_checks && !options.stream_access {
        return Err("--enable-auth-checks goes with --stream-access".into());
    }
    if !options.has_steps() {
        return Err(
            "nothing to do: choose --hubspot, --stream-webhook URL, --stream-access and/or --local-table NAME"
                .into(),
        );
    }
    Ok(Command::Run(options))
}

/// An http(s) URL with a host, without a trailing slash.
fn http_url(flag: &str, value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .unwrap_or_default();
    if rest.is_empty()
        || rest.starts_with('/')
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("{flag} must be an http(s) URL, got {value:?}"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// Stream posts every message to this URL from the internet: https only. Kept exactly as given (a Function URL
/// ends with '/'), because "already configured" compares it with what Stream has.
fn webhook_url(flag: &str, value: String) -> Result<String, String> {
    http_url(flag, &value)?;
    if !value.starts_with("https://") {
        return Err(format!(
            "{flag} must be an https URL (the stack's WebhookFunctionUrl), got {value:?}"
        ));
    }
    Ok(value)
}

/// DynamoDB's rule for table names: 3 to 255 of `[A-Za-z0-9_.-]`.
fn table_name(value: String) -> Result<String, String> {
    let valid = (3..=255).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(value)
    } else {
        Err(format!(
            "--local-table must be 3 to 255 letters, digits, '_', '.' or '-', got {value:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Command, String> {
        parse_args(list.iter().map(|a| (*a).to_owned()))
    }

    fn run_options(list: &[&str]) -> Options {
        match args(list) {
            Ok(Command::Run(options)) => options,
            other => panic!("{list:?} gave {other:?}"),
        }
    }

    #[test]
    fn parses_steps_in_both_flag_forms() {
        let options = run_options(&[
            "--hubspot",
            "--stream-webhook",
            "https://abc.lambda-url.eu-west-1.on.aws/",
            "--local-table=chat-sync",
            "--dynamodb-endpoint=http://127.0.0.1:8123/",
            "--stream-access",
            "--confine-other-types",
            "--enable-auth-checks",
            "--dry-run",
        ]);
        assert_eq!(
            options,
            Options {
                hubspot: true,
                stream_webhook: Some("https://abc.lambda-url.eu-west-1.on.aws/".into()),
                stream_access: true,
                confine_other_types: true,
                enable_auth_checks: true,
                local_table: Some("chat-sync".into()),
                dynamodb_endpoint: "http://127.0.0.1:8123".into(),
                dry_run: true,
            }
        );
        assert_eq!(
            run_options(&["--local-table", "t-1"]).dynamodb_endpoint,
            DEFAULT_DYNAMODB_ENDPOINT
        );
        assert_eq!(args(&["--dry-run", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn rejects_what_cannot_work() {
        for bad in [
            &[][..],
            &["--dry-run"],
            &["--stream-webhook"],
            &["--stream-webhook", "http://insecure.example/hook"],
            &["--stream-webhook", "hooks.example"],
            &["--local-table", "x"],
            &["--local-table", "has space"],
            &["--dynamodb-endpoint", "localhost:8000", "--hubspot"],
            &["--hubspot=yes"],
            &["--hubspot", "--verbose"],
            &["--confine-other-types", "--hubspot"],
            &["--stream-access", "--confine-other-types=yes"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} was accepted");
        }
        let error = args(&["--stream-webhook"]).expect_err("no URL");
        assert!(error.contains("--stream-webhook needs a URL"), "{error}");
    }
}
