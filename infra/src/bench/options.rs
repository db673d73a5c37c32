//! `make bench`'s command line (`BENCH_ARGS`): which sections run, how many runs of the desks, the burst's workload.
//! An argument it does not know is an error that names it, before anything starts: the bench used to ignore such
//! arguments, so a typo (`--run 5`) or `--help` ran every section.

use super::busy_desk::{MAX_HEAVY_PACE, MIN_HEAVY_PACE};
use super::design::SWEEP_EVERY;
use std::time::Duration;

/// The longest sweep period a run may ask for: past the notes' grace and the desks' drain, a run would only wait.
const MAX_SWEEP_EVERY_S: usize = 300;

/// The sections, in the order they run.
pub const SECTIONS: [&str; 8] = [
    "busy-desk",
    "desk-5x",
    "burst",
    "late-writes",
    "flush-cost",
    "retention",
    "registration",
    "cold-start",
];

pub const USAGE: &str = "\
usage: bench [--only SECTION[,SECTION...]] [--skip-cold-start] [--runs N] [--no-previous]
             [--sweep-every SECONDS] [--heavy-pace N] [--messages N] [--contacts N] [--concurrency N]

  --only SECTION,...  run these sections only (every section by default): busy-desk, desk-5x, burst,
                      late-writes, flush-cost, retention, registration, cold-start
  --skip-cold-start   leave the cold starts out
  --runs N            the desks: chat-sync's runs, each on a fresh world (1 by default)
  --no-previous       the desks: leave the previous design out
  --sweep-every S     how often the sweepers run, 1 to 300 s (5 by default; every 60 s deployed)
  --heavy-pace N      the desk-5x section at N busy desks instead of 5, 2 to 10 (its conversations and messages
                      scale with N; its lag goal stays 5 s)
  --messages N        the burst: messages (and --contacts N over how many contacts, --concurrency N deliveries
                      at once)
  -h, --help          this text

Prints Markdown tables on standard output, progress on standard error. With RUST_LOG set, the handlers' logs
are printed too.
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Run(Options),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The sections to run, in `SECTIONS`' order.
    pub sections: Vec<&'static str>,
    /// chat-sync's runs of each desk.
    pub runs: usize,
    /// Whether the desks run the previous design too.
    pub previous: bool,
    /// How often the designs' sweepers run.
    pub sweep_every: Duration,
    /// How many busy desks the desk-5x section is (`--heavy-pace`, 5 by default).
    pub heavy_pace: usize,
    /// The burst's workload where given (else its defaults).
    pub messages: Option<usize>,
    pub contacts: Option<usize>,
    pub concurrency: Option<usize>,
}

impl Options {
    pub fn runs_section(&self, section: &str) -> bool {
        self.sections.contains(&section)
    }
}

/// Reads the arguments after the program's name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut only: Vec<&'static str> = Vec::new();
    let mut skip_cold_start = false;
    let mut options = Options {
        sections: Vec::new(),
        runs: 1,
        previous: true,
        sweep_every: SWEEP_EVERY,
        heavy_pace: 5,
        messages: None,
        contacts: None,
        concurrency: None,
    };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let raw = args
                .next()
                .ok_or_else(|| format!("{name} needs a number"))?;
            raw.parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{name} needs a whole number of at least 1, got {raw:?}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--only" => {
                let names = args.next().ok_or_else(|| {
                    format!("--only needs one or more of {}", SECTIONS.join(", "))
                })?;
                for name in names.split(',') {
                    let section =
                        SECTIONS
                            .iter()
                            .find(|s| **s == name.trim())
                            .ok_or_else(|| {
                                format!("unknown section {name:?}: one of {}", SECTIONS.join(", "))
                            })?;
                    only.push(section);
                }
            }
            "--skip-cold-start" => skip_cold_start = true,
            "--no-previous" => options.previous = false,
            "--runs" => options.runs = number("--runs")?,
            "--sweep-every" => {
                let seconds = number("--sweep-every")?;
                if seconds > MAX_SWEEP_EVERY_S {
                    return Err(format!(
                        "--sweep-every is at most {MAX_SWEEP_EVERY_S} s, got {seconds}"
                    ));
                }
                options.sweep_every = Duration::from_secs(seconds as u64);
            }
            "--heavy-pace" => {
                let pace = number("--heavy-pace")?;
                if !(MIN_HEAVY_PACE..=MAX_HEAVY_PACE).contains(&pace) {
                    return Err(format!(
                        "--heavy-pace is {MIN_HEAVY_PACE} to {MAX_HEAVY_PACE} busy desks, got {pace}"
                    ));
                }
                options.heavy_pace = pace;
            }
            "--messages" => options.messages = Some(number("--messages")?),
            "--contacts" => options.contacts = Some(number("--contacts")?),
            "--concurrency" => options.concurrency = Some(number("--concurrency")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    options.sections = SECTIONS
        .iter()
        .copied()
        .filter(|s| only.is_empty() || only.contains(s))
        .filter(|s| !(skip_cold_start && *s == "cold-start"))
        .collect();
    Ok(Command::Run(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, String> {
        parse_args(line.split_whitespace().map(str::to_owned))
    }

    fn options(line: &str) -> Options {
        match parse(line) {
            Ok(Command::Run(options)) => options,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn nothing_runs_every_section_once_with_the_previous_design() {
        let all = options("");
        assert_eq!(all.sections, SECTIONS.to_vec());
        assert_eq!((all.runs, all.previous), (1, true));
        assert_eq!(all.sweep_every, SWEEP_EVERY);
        assert_eq!(all.heavy_pace, 5);
        assert_eq!(
            (all.messages, all.contacts, all.concurrency),
            (None, None, None)
        );
    }

    #[test]
    fn the_flushers_figures_are_asked_for_as_the_docs_write_them() {
        let desks = options("--only busy-desk,desk-5x --runs 5 --no-previous");
        assert_eq!(desks.sections, ["busy-desk", "desk-5x"]);
        assert_eq!((desks.runs, desks.previous), (5, false));
        // In the sections' own order, whatever the order asked.
        assert_eq!(
            options("--only cold-start,burst").sections,
            ["burst", "cold-start"]
        );
        assert!(!options("--skip-cold-start").runs_section("cold-start"));
        assert_eq!(
            options("--sweep-every 60").sweep_every,
            Duration::from_secs(60)
        );
        assert_eq!(
            options("--messages 50 --contacts 5 --concurrency 8").messages,
            Some(50)
        );
        assert_eq!(options("--heavy-pace 3").heavy_pace, 3);
    }

    #[test]
    fn help_is_the_usage_and_a_word_it_does_not_know_is_an_error_naming_it() {
        assert_eq!(parse("--help"), Ok(Command::Help));
        assert_eq!(parse("--only busy-desk -h"), Ok(Command::Help));
        for (line, says) in [
            ("--run 5", "unknown argument \"--run\""),
            ("busy-desk", "unknown argument \"busy-desk\""),
            ("--only", "--only needs one or more of busy-desk"),
            ("--only busy-desk,desk5x", "unknown section \"desk5x\""),
            ("--runs", "--runs needs a number"),
            (
                "--runs five",
                "--runs needs a whole number of at least 1, got \"five\"",
            ),
            (
                "--runs 0",
                "--runs needs a whole number of at least 1, got \"0\"",
            ),
            (
                "--heavy-pace 1",
                "--heavy-pace is 2 to 10 busy desks, got 1",
            ),
            (
                "--heavy-pace 11",
                "--heavy-pace is 2 to 10 busy desks, got 11",
            ),
        ] {
            let problem = parse(line).expect_err(line);
            assert!(problem.contains(says), "{line:?}: {problem}");
        }
    }
}
