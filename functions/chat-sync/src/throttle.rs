//! Abuse limits of the public registration endpoint: registrations per client IP address and per e-mail, checked
//! before any HubSpot or Stream call, so a flood costs neither quota nor contacts.
//!
//! Each limit is `<count>/<seconds>` (`REGISTRATION_LIMIT_PER_IP`, `REGISTRATION_LIMIT_PER_EMAIL`; `0` turns one
//! off), run as a GCRA per IP address or e-mail — the mechanism of the HubSpot rate budget (`crate::budget`), kept
//! in the table the same way (`adapters::dynamo::DynamoThrottle`): up to `count` registrations at once, then one
//! every `seconds / count`. A refused registration is told when the next one would be allowed (`Retry-After`).
//!
//! The address's limit is checked first and the e-mail's only if it passes: a flood from one address refused by
//! its own limit must not use up the allowance of the e-mails it names, or anyone could keep a chosen customer
//! from ever opening a chat. An IPv6 client is counted by its /64, the block one subscriber gets (a host picks any
//! address in it at will); an IPv4 client by its address.

use crate::budget::RateLimit;
use crate::domain::Email;
use std::net::IpAddr;
use std::time::Duration;

/// Who a registration counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The client's address as API Gateway saw it (`requestContext.http.sourceIp`), an IPv6 one as its /64.
    Ip(IpAddr),
    Email(Email),
}

/// The address a client is counted by: an IPv4 address as it is, an IPv6 one as its /64 network (an IPv4-mapped
/// IPv6 address as the IPv4 address it is).
pub fn client_block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

impl Subject {
    /// The kind, as stored and in logs (never the value).
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Ip(_) => "ip",
            Subject::Email(_) => "email",
        }
    }

    /// The bytes a stored key is derived from.
    pub fn value(&self) -> String {
        match self {
            Subject::Ip(ip) => ip.to_string(),
            Subject::Email(email) => email.as_str().to_owned(),
        }
    }
}

/// The two limits; `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationLimits {
    pub per_ip: Option<RateLimit>,
    pub per_email: Option<RateLimit>,
}

impl RegistrationLimits {
    pub const DEFAULT_PER_IP: &'static str = "20/600";
    pub const DEFAULT_PER_EMAIL: &'static str = "5/600";
    pub const OFF: RegistrationLimits = RegistrationLimits {
        per_ip: None,
        per_email: None,
    };

    /// What one registration is checked against, in the order to check them (the address first, see the module
    /// docs). Without a client address (an event from something other than API Gateway) only the e-mail's limit
    /// applies.
    pub fn checks(&self, ip: Option<IpAddr>, email: &Email) -> Vec<(Subject, RateLimit)> {
        let ip = ip
            .zip(self.per_ip)
            .map(|(ip, l)| (Subject::Ip(client_block(ip)), l));
        let email = self.per_email.map(|l| (Subject::Email(email.clone()), l));
        ip.into_iter().chain(email).collect()
    }
}

/// Parses `<count>/<seconds>` (1 to 10,000 per 1 s to a day), or `0` for no limit.
pub fn parse_limit(raw: &str) -> Result<Option<RateLimit>, String> {
    if raw.trim() == "0" {
        return Ok(None);
    }
    let invalid =
        || format!("must be <count>/<seconds> (e.g. 20/600) or 0 for no limit, got {raw:?}");
    let (count, seconds) = raw.split_once('/').ok_or_else(invalid)?;
    let count: u32 = count.trim().parse().map_err(|_| invalid())?;
    let seconds: u64 = seconds.trim().parse().map_err(|_| invalid())?;
    if !(1..=10_000).contains(&count) || !(1..=86_400).contains(&seconds) {
        return Err(
            "needs a count of 1 to 10000 per 1 to 86400 seconds (or 0 for no limit)".into(),
        );
    }
    Ok(Some(RateLimit {
        count,
        window: Duration::from_secs(seconds),
    }))
}

/// The GCRA of a limit: (emission interval, tolerance) in milliseconds — `count` at once, then one per
/// `window / count`.
pub fn gcra(limit: RateLimit) -> (i64, i64) {
    let window_ms = limit.window.as_millis() as i64;
    let emission_ms = (window_ms / i64::from(limit.count)).max(1);
    (emission_ms, i64::from(limit.count - 1) * emission_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{decide, Decision};

    #[test]
    fn limits_parse_zero_is_off_garbage_is_refused() {
        assert_eq!(parse_limit("0"), Ok(None));
        let limit = parse_limit(" 20 / 600 ").expect("valid").expect("on");
        assert_eq!((limit.count, limit.window), (20, Duration::from_secs(600)));
        for bad in [
            "", "20", "20/", "/60", "x/60", "0/60", "20/0", "-1/60", "20/86401",
        ] {
            assert!(parse_limit(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_limit_grants_count_at_once_then_one_per_share_of_the_window() {
        let limit = parse_limit("5/600").expect("valid").expect("on");
        let (emission, tolerance) = gcra(limit);
        assert_eq!(emission, 120_000);
        let mut tat = None;
        for _ in 0..5 {
            match decide(tat, 0, emission, tolerance) {
                Decision::Grant { tat: next } => tat = Some(next),
                Decision::Wait { .. } => panic!("refused within the burst"),
            }
        }
        assert_eq!(
            decide(tat, 0, emission, tolerance),
            Decision::Wait { wait_ms: 120_000 }
        );
        assert!(matches!(
            decide(tat, 120_000, emission, tolerance),
            Decision::Grant { .. }
        ));
    }

    #[test]
    fn checks_skip_what_is_off_or_unknown() {
        let email = Email::parse("ada@example.com").expect("valid");
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        let on = RegistrationLimits {
            per_ip: parse_limit("20/600").expect("valid"),
            per_email: parse_limit("5/600").expect("valid"),
        };
        let kinds = |checks: Vec<(Subject, RateLimit)>| {
            checks.iter().map(|(s, _)| s.kind()).collect::<Vec<_>>()
        };
        assert_eq!(kinds(on.checks(Some(ip), &email)), ["ip", "email"]);
        assert_eq!(kinds(on.checks(None, &email)), ["email"]);
        assert!(RegistrationLimits::OFF.checks(Some(ip), &email).is_empty());
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64_an_ipv4_one_as_its_address() {
        let block = |raw: &str| client_block(raw.parse().expect("ip")).to_string();
        assert_eq!(block("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(block("2001:db8:1:2::1"), block("2001:db8:1:2:ffff::9"));
        assert_ne!(block("2001:db8:1:2::1"), block("2001:db8:1:3::1"));
        assert_eq!(block("203.0.113.7"), "203.0.113.7");
        assert_eq!(block("::ffff:203.0.113.7"), "203.0.113.7");
    }
}
