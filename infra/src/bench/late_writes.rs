//! Late writes: 10 % of HubSpot writes answered 502 yet applied 3 s later anyway, no other failure. A writer that
//! takes a 502 for "not applied" and writes again is overtaken by the old write when it lands. Two loads: the burst
//! (all at once), and the same kind of messages at a busy desk's pace, where chat-sync writes often enough for late
//! writes to hit it. The transcripts are judged once every late write has landed.

use super::burst::{final_after, notes_check, other_calls, BurstReport, Workload};
use super::design::Design;
use super::markdown;

/// One run: the design, what it ran, what came of it.
pub struct LateRun {
    pub design: Design,
    pub load: &'static str,
    pub workload: Workload,
    pub report: BurstReport,
}

pub fn table(runs: &[LateRun]) -> String {
    let mut header = vec!["late writes".to_owned()];
    header.extend(
        runs.iter()
            .map(|run| format!("{}, {}", run.design.name(), run.load)),
    );
    let row = |name: &str, value: &dyn Fn(&LateRun) -> String| {
        let mut row = vec![name.to_owned()];
        row.extend(runs.iter().map(value));
        row
    };
    let rows = vec![
        row("messages (deliveries)", &|run| {
            format!("{} ({})", run.report.messages, run.report.deliveries)
        }),
        row(
            "write calls: property + notes (late ones among them)",
            &|run| {
                let r = &run.report;
                format!(
                    "{} + {} ({})",
                    r.write_calls - r.note_writes,
                    r.note_writes,
                    r.late_writes
                )
            },
        ),
        row("other HubSpot requests, by route", &|run| {
            other_calls(&run.report)
        }),
        row("lost lines at the end (property)", &|run| {
            run.report.lost.to_string()
        }),
        row(
            "lost / duplicated / out-of-order lines at the end (timeline notes)",
            &|run| notes_check(&run.report),
        ),
        row(
            "stale transcripts at the end (contacts failing the checker: property or notes)",
            &|run| format!("{} of {}", run.report.stale, run.workload.contacts),
        ),
        row("times a property lost a line it had shown", &|run| {
            run.report.went_backwards.to_string()
        }),
        row(
            "writes started while a late write to the contact was pending",
            &|run| run.report.overlapping_writes.to_string(),
        ),
        row(
            "every transcript final (no late write pending) after",
            &|run| final_after(&run.report),
        ),
    ];
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let loads: Vec<String> = runs
        .iter()
        .filter(|run| run.design == Design::ChatSync)
        .map(|run| {
            let w = &run.workload;
            let pace = w
                .pace
                .map(|p| format!("at {p:.0} messages/s"))
                .unwrap_or_else(|| format!("{} concurrent deliveries at once", w.concurrency));
            format!(
                "{}: {} messages over {} contacts, {pace}",
                run.load, w.messages, w.contacts
            )
        })
        .collect();
    let late = runs.first().map(|run| run.workload);
    format!(
        "Late writes: {:.0} % of writes answered 502 yet applied {} s later, no other failure; {:.0} % duplicate \
         deliveries; HubSpot's limit on; sweeper every 5 s; judged after every late write has landed. Loads — {}.\n\n{}",
        late.map_or(0.0, |w| w.late_write_rate * 100.0),
        late.map_or(0, |w| w.late_write_delay.as_secs()),
        late.map_or(0.0, |w| w.duplicate_rate * 100.0),
        loads.join("; "),
        markdown(&header, &rows)
    )
}
