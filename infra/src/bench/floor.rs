//! The fewest HubSpot calls that any flusher, not only ours, could make for a desk's messages at a given lag.
//!
//! Issue #25 asks the 5× desk for a lag p99 of at most 5 s and for no more HubSpot calls a message than the build it
//! was filed against, which ran a minute behind. A flusher that is behind writes each contact once for many
//! messages; one that keeps up cannot. This module turns that trade into a number from a run's own
//! acknowledgement times, so a table can say how far a design is from what the lag allows, and whether a calls goal
//! can be met at a lag at all.
//!
//! The floor assumes the most any design could have, so it is a lower bound, never an estimate:
//! - every write is instantaneous and lands exactly when it is sent;
//! - every property call carries the most contacts HubSpot takes in one batch ([`MAX_BATCH`]);
//! - each contact is written at the last moment the lag allows, so one write covers as many messages as possible;
//! - the timeline notes are written once each, after their conversation's last message;
//! - the 1 % of messages that a p99 lets go over the lag are the ones that save the most.

use chat_sync::ports::MAX_BATCH;
use std::time::{Duration, Instant};

/// One message as the floor sees it.
#[derive(Debug, Clone, Copy)]
pub struct Delivered {
    /// When its first delivery was sent: no flusher could have written it before.
    pub sent: Instant,
    /// When Stream first got a 2xx for it: its lag counts from here.
    pub acked: Instant,
}

/// The fewest property writes of one contact that show each of its `messages` within `lag` of its
/// acknowledgement, each write taking every message sent before it.
///
/// Each message needs a write in `[sent, acked + lag]`. Taken by deadline, a message is covered if the last write
/// placed came after it was sent (that write is at an earlier deadline, so not after its own); otherwise a write
/// goes at its deadline, the latest it can go, which covers the most later messages. That is the greedy stabbing
/// of intervals by points, which is optimal.
pub fn fewest_writes(messages: &[Delivered], lag: Duration) -> usize {
    let mut by_deadline: Vec<(Instant, Instant)> =
        messages.iter().map(|m| (m.acked + lag, m.sent)).collect();
    by_deadline.sort();
    let mut writes = 0;
    let mut last: Option<Instant> = None;
    for (deadline, sent) in by_deadline {
        if last.is_some_and(|write| sent <= write) {
            continue;
        }
        writes += 1;
        last = Some(deadline);
    }
    writes
}

/// The fewest HubSpot calls that show every message of `contacts` (each contact's messages) within `lag` at p99,
/// and then write each conversation's note once (`notes`: whether notes are a target; one conversation per
/// contact, as at the desk).
///
/// Letting 1 % of the messages go over the lag saves at most one write for each of them, so that many writes come
/// off the cover of all of them.
pub fn fewest_calls(contacts: &[Vec<Delivered>], lag: Duration, notes: bool) -> usize {
    let messages: usize = contacts.iter().map(Vec::len).sum();
    let writes: usize = contacts
        .iter()
        .map(|messages| fewest_writes(messages, lag))
        .sum();
    let may_miss = messages / 100;
    let property = writes.saturating_sub(may_miss).div_ceil(MAX_BATCH);
    let conversations = contacts.iter().filter(|m| !m.is_empty()).count();
    let notes = if notes {
        conversations.div_ceil(MAX_BATCH)
    } else {
        0
    };
    property + notes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages acknowledged at `secs` after `start`, each sent 10 ms before.
    fn at(start: Instant, secs: &[f64]) -> Vec<Delivered> {
        secs.iter()
            .map(|s| {
                let acked = start + Duration::from_secs(1) + Duration::from_secs_f64(*s);
                Delivered {
                    sent: acked - Duration::from_millis(10),
                    acked,
                }
            })
            .collect()
    }

    #[test]
    fn one_write_covers_the_messages_within_the_lag_of_the_first_it_covers() {
        let t = Instant::now();
        let lag = Duration::from_secs(5);
        assert_eq!(fewest_writes(&[], lag), 0);
        assert_eq!(fewest_writes(&at(t, &[0.0]), lag), 1);
        // 0–5 s in one write (at 5 s); 5.1 needs a second, which covers up to 10.1.
        assert_eq!(fewest_writes(&at(t, &[0.0, 2.0, 5.0, 5.1, 10.1]), lag), 2);
        assert_eq!(fewest_writes(&at(t, &[0.0, 2.0, 5.0, 5.1, 10.2]), lag), 3);
        // Messages 7.5 s apart, as at the 5× desk on average: each needs its own write.
        assert_eq!(fewest_writes(&at(t, &[0.0, 7.5, 15.0, 22.5]), lag), 4);
        // Behind by a minute, one write covers them all.
        let late = Duration::from_secs(60);
        assert_eq!(fewest_writes(&at(t, &[0.0, 7.5, 15.0, 22.5]), late), 1);
        // The order they come in does not matter.
        assert_eq!(fewest_writes(&at(t, &[10.1, 5.0, 0.0, 5.1, 2.0]), lag), 2);
    }

    #[test]
    fn a_write_takes_a_message_sent_before_it_even_if_acknowledged_after() {
        let t = Instant::now() + Duration::from_secs(1);
        let lag = Duration::from_secs(5);
        let sent_at = |sent: f64, acked: f64| Delivered {
            sent: t + Duration::from_secs_f64(sent),
            acked: t + Duration::from_secs_f64(acked),
        };
        // A write at 5 s (the first's deadline) takes the second, sent at 4.9 s though acknowledged at 6 s.
        assert_eq!(
            fewest_writes(&[sent_at(0.0, 0.0), sent_at(4.9, 6.0)], lag),
            1
        );
        // Sent after that write, it needs its own.
        assert_eq!(
            fewest_writes(&[sent_at(0.0, 0.0), sent_at(5.1, 6.0)], lag),
            2
        );
    }

    #[test]
    fn calls_fill_every_batch_and_the_one_percent_over_the_lag_saves_the_most() {
        let t = Instant::now();
        let lag = Duration::from_secs(5);
        // 150 contacts with two messages 10 s apart: 300 writes, 3 of which the p99 may skip; 297 writes take
        // 3 calls, and 150 conversations' notes 2 more.
        let contacts: Vec<Vec<Delivered>> = (0..150).map(|_| at(t, &[0.0, 10.0])).collect();
        assert_eq!(fewest_calls(&contacts, lag, true), 5);
        assert_eq!(fewest_calls(&contacts, lag, false), 3);
        // 101 writes less the 2 a p99 may skip fit one call.
        let contacts: Vec<Vec<Delivered>> = (0..101).map(|_| at(t, &[0.0, 1.0])).collect();
        assert_eq!(fewest_calls(&contacts, lag, false), 1);
        // Contacts with no message need no note.
        let mut contacts = contacts;
        contacts.extend((0..50).map(|_| Vec::new()));
        assert_eq!(fewest_calls(&contacts, lag, true), 3);
        assert_eq!(fewest_calls(&[], lag, true), 0);
    }
}
