//! `make sam-local`: every row of the README's event table through `sam local invoke`, with the real `template.yaml`
//! (built by `sam build`), in Docker, as a user runs them; one line per row, and an error if any row's answer is not
//! the documented one.
//!
//! The functions run with the template's environment, as deployed, with only what `samconfig.toml`'s `local`
//! environment and the `--env-vars` file this writes ([`ENV_VARS_FILE`]) change: the endpoints (DynamoDB Local, the
//! local Secrets Manager, the HubSpot and Stream sandboxes), all listening on the docker bridge's address, which the
//! containers reach. The commands run are the README's, word for word ([`invoke_command`]; a test compares them),
//! plus `--invoke-image IMAGE --skip-pull-image` on a machine that cannot pull AWS's base image (`make sam-local`
//! then builds a stand-in, infra/sam-local/standin-image.sh).

use crate::event_table;
use crate::invoke_env::{InvokeEnv, InvokeEnvError, Ports, EVENTS_ORIGIN, TABLE};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Where the `--env-vars` file is written, relative to the repository (beside `sam build`'s output, git-ignored).
pub const ENV_VARS_FILE: &str = ".aws-sam/local-env-vars.json";

/// The variables `sam` must run with: DynamoDB Local keeps one database per access key and region, and SAM hands
/// the functions the credentials and region of its own session.
pub const SAM_ENVIRONMENT: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "local"),
    ("AWS_SECRET_ACCESS_KEY", "local"),
    ("AWS_REGION", "us-east-1"),
];

/// The longest one `sam local invoke` may take: a container start, the function's cold start and its work.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// The template's logical id of the function a Lambda binary is built for (`Metadata.BuildProperties.Binary`).
pub fn function_id(binary: &str) -> &'static str {
    match binary {
        "registration" => "RegistrationFunction",
        "agent-sessions" => "AgentSessionsFunction",
        "webhook" => "WebhookFunction",
        "sweeper" => "SweeperFunction",
        "hubspot-webhooks" => "HubSpotWebhooksFunction",
        _ => "UnknownFunction",
    }
}

/// The README's command for one row of its event table.
pub fn invoke_command(file: &str) -> String {
    format!(
        "sam local invoke {} --config-env local --event events/{file}",
        function_id(event_table::binary(file))
    )
}

/// The README's line that sets [`SAM_ENVIRONMENT`].
pub fn export_line() -> String {
    let pairs: Vec<String> = SAM_ENVIRONMENT
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!("export {}", pairs.join(" "))
}

mod start_api;
pub use start_api::{check_start_api, start_api_command, start_lambda_command};

#[derive(Debug, thiserror::Error)]
pub enum SamLocalError {
    #[error(transparent)]
    Environment(#[from] InvokeEnvError),
    #[error("cannot write {path}: {source}")]
    EnvVarsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("README.md: {0}")]
    Readme(String),
    #[error("{failed} of {total} rows did not give their documented answer")]
    Rows { failed: usize, total: usize },
}

/// How to run `sam`.
pub struct Sam {
    /// The repository: `sam` runs there (template.yaml, samconfig.toml, .aws-sam/build, events/).
    pub root: PathBuf,
    /// The `sam` executable.
    pub program: PathBuf,
    /// A local base image to use instead of AWS's, when AWS's cannot be pulled.
    pub invoke_image: Option<String>,
}

impl Sam {
    fn command(&self, line: &str) -> tokio::process::Command {
        let mut words = line.split_whitespace().skip(1);
        let mut command = tokio::process::Command::new(&self.program);
        command.current_dir(&self.root).args(words.by_ref());
        if let Some(image) = &self.invoke_image {
            command.args(["--invoke-image", image, "--skip-pull-image"]);
        }
        command.envs(SAM_ENVIRONMENT).env("SAM_CLI_TELEMETRY", "0");
        command
    }
}

/// What one `sam local invoke` printed: the function's answer (its last stdout line) and everything else.
struct Invocation {
    response: Option<Value>,
    stdout: String,
    stderr: String,
    took: Duration,
}

async fn invoke(sam: &Sam, line: &str) -> Result<Invocation, String> {
    let started = Instant::now();
    let child = sam
        .command(line)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", sam.program.display()))?;
    let output = tokio::time::timeout(INVOKE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("no answer within {INVOKE_TIMEOUT:?}"))?
        .map_err(|e| format!("sam: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let response = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Value>(line.trim()).ok());
    Ok(Invocation {
        response,
        stdout,
        stderr,
        took: started.elapsed(),
    })
}

/// Starts the local services on `host`, writes [`ENV_VARS_FILE`] and returns them (running until dropped).
pub async fn environment(root: &Path, host: IpAddr) -> Result<InvokeEnv, SamLocalError> {
    let env = InvokeEnv::start_on(
        host,
        Ports {
            dynamodb: 0,
            hubspot: 0,
            stream: 0,
        },
        &root.join("events"),
    )
    .await?;
    let path = root.join(ENV_VARS_FILE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SamLocalError::EnvVarsFile {
            path: path.clone(),
            source,
        })?;
    }
    let text = serde_json::to_string_pretty(&env.sam_env_vars()).unwrap_or_default();
    std::fs::write(&path, text + "\n")
        .map_err(|source| SamLocalError::EnvVarsFile { path, source })?;
    Ok(env)
}

/// Runs every row of the README's table through `sam local invoke` in `env`, printing one line per row.
pub async fn check_rows(sam: &Sam, env: &InvokeEnv) -> Result<(), SamLocalError> {
    let readme = std::fs::read_to_string(sam.root.join("README.md"))
        .map_err(|e| SamLocalError::Readme(e.to_string()))?;
    let files = event_table::files(&readme);
    if files.is_empty() {
        return Err(SamLocalError::Readme(format!(
            "no event table under {:?}",
            event_table::SECTION
        )));
    }
    let mut failed = 0;
    for file in &files {
        let line = invoke_command(file);
        let outcome = invoke(sam, &line).await.and_then(|run| {
            let response = run.response.as_ref().ok_or_else(|| {
                format!(
                    "no answer\nstdout:\n{}\nstderr:\n{}",
                    run.stdout, run.stderr
                )
            })?;
            let answer = event_table::Answer {
                response,
                log: &run.stderr,
            };
            event_table::check(file, &answer, EVENTS_ORIGIN, TABLE)
                .map(|summary| (summary, run.took))
                .map_err(|problem| format!("{problem}\nsam's output:\n{}", run.stderr))
        });
        match outcome {
            Ok((summary, took)) => println!("ok   {file:<40} {summary} ({} ms)", took.as_millis()),
            Err(problem) => {
                failed += 1;
                println!("FAIL {file:<40} {line}: {problem}");
            }
        }
    }
    // The message events reached the sample conversation's contact in the sandbox HubSpot, through the sweep.
    let sample = env.sample();
    let transcript = env
        .hubspot()
        .contact_by_email(crate::invoke_env::SAMPLE_EMAIL)
        .and_then(|contact| contact.properties.get("chat_transcript").cloned())
        .unwrap_or_default();
    if transcript.contains(&sample.visitor_name) {
        println!(
            "ok   the sample conversation is in the sandbox contact's chat_transcript ({} characters)",
            transcript.len()
        );
    } else {
        failed += 1;
        println!("FAIL the sample conversation is not in the sandbox contact's chat_transcript: {transcript:?}");
    }
    match failed {
        0 => Ok(()),
        failed => Err(SamLocalError::Rows {
            failed,
            total: files.len() + 1,
        }),
    }
}

/// The docker bridge's address on this host (the gateway of docker's default network): the containers SAM starts
/// reach the host there. Older daemons leave the gateway out of the network's description: then the address of the
/// bridge's interface (docker0).
pub async fn docker_bridge_address() -> Result<IpAddr, String> {
    let run = |program: &'static str, args: Vec<String>| async move {
        let output = tokio::process::Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        Ok::<String, String>(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let ipv4 = |text: &str| {
        text.split(|c: char| c.is_whitespace() || c == '/')
            .find_map(|word| word.parse::<IpAddr>().ok().filter(IpAddr::is_ipv4))
    };
    let inspect = |format: &str| {
        ["network", "inspect", "bridge", "--format", format]
            .map(str::to_owned)
            .to_vec()
    };
    let gateway = run(
        "docker",
        inspect("{{range .IPAM.Config}}{{.Gateway}} {{end}}"),
    )
    .await?;
    if let Some(address) = ipv4(&gateway) {
        return Ok(address);
    }
    let name = run(
        "docker",
        inspect("{{index .Options \"com.docker.network.bridge.name\"}}"),
    )
    .await?;
    let name = match name.trim() {
        "" | "<no value>" => "docker0".to_owned(),
        name => name.to_owned(),
    };
    let addresses = run(
        "ip",
        ["-4", "-o", "addr", "show", "dev", &name]
            .map(str::to_owned)
            .to_vec(),
    )
    .await?;
    addresses
        .split_whitespace()
        .skip_while(|word| *word != "inet")
        .nth(1)
        .and_then(ipv4)
        .ok_or_else(|| {
            format!("docker's bridge network has no IPv4 address (interface {name}): {addresses}")
        })
}
