//! Who may use the dev endpoints (`/dev/*`): a browser or tool on this machine, addressing it as this machine.
//!
//! Binding `127.0.0.1` does not keep others out on its own. A page on another site can make the browser of whoever
//! runs `make dev` send requests here, by resolving its own name to 127.0.0.1 (DNS rebinding); and a tunnel — which
//! live mode needs, so Stream can reach `/webhooks` — forwards anyone's request. The first carries the other site's
//! name in `Host`; a tunnel carries its own name, or rewrites `Host` and adds forwarding headers.
//!
//! Invariants:
//! - A `/dev/*` route runs only for a request whose `Host` (and whose target, if it names a host) is `127.0.0.1`,
//!   `localhost` or `[::1]`, with or without a port, and which carries no `Forwarded`, `X-Forwarded-For` or
//!   `X-Forwarded-Host` header. Anything else is refused before the route runs: 403 `host_not_allowed` or
//!   `forwarded_not_allowed`.
//! - In live mode, the route that hands out what the real services hold — a contact's transcript — is off: 403
//!   `sandbox_only`, whoever asks. (Agents get Stream sessions only by signing in: `/agent-sessions`.)
//!   The `Host` check alone cannot be trusted with them: a tunnel that rewrites `Host` to `localhost` and adds no
//!   forwarding header gets through it.
//! - The handlers' paths (`/registrations`, `/webhooks`, `/hubspot/webhooks`) are not guarded here: Stream and
//!   HubSpot reach them through a tunnel, and each handler checks its callers itself, as when deployed.
//!
//! Both guards are layers on routes, independent of what the routes do: a route added under them is guarded.

use super::Mode;
use crate::serve::error_response;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use chat_sync::handlers::ApiError;

/// Headers a proxy or tunnel adds: a request that carries one was not made on this machine.
const FORWARDING_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-forwarded-host"];

/// Middleware for every `/dev/*` route: serves only requests addressed to this machine and made on it.
pub async fn loopback_only(request: Request, next: Next) -> Response {
    match check_local(request.headers(), request.uri()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!(
                code = refusal.code,
                path = request.uri().path(),
                "refused a dev endpoint request not addressed to this machine"
            );
            error_response(refusal)
        }
    }
}

/// Middleware for the routes that hand out CRM data: off in live mode.
pub async fn sandbox_only(State(mode): State<Mode>, request: Request, next: Next) -> Response {
    match mode {
        Mode::Sandbox => next.run(request).await,
        Mode::Live => error_response(ApiError::new(
            StatusCode::FORBIDDEN,
            "sandbox_only",
            "this dev endpoint is off in live mode: it would hand real CRM data to whoever reaches this server (a \
             tunnel included). Answer visitors in the agent console (/agent/) and read contacts in HubSpot",
        )),
    }
}

/// Why a request is not a local one, or `Ok` for a local one.
fn check_local(headers: &HeaderMap, uri: &Uri) -> Result<(), ApiError> {
    // HTTP/1.1 requires exactly one Host; a request without one, or with several, is not one a browser here sent.
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok(),
        _ => None,
    };
    // An absolute request target (`GET http://name/...`) names a host too: it must agree.
    let target_ok = uri
        .authority()
        .is_none_or(|authority| is_loopback_host(authority.as_str()));
    if !(host.is_some_and(is_loopback_host) && target_ok) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            "the dev endpoints answer only requests addressed to this machine (Host 127.0.0.1, localhost or [::1]): \
             open the dev server at its http://127.0.0.1:<PORT>/ address",
        ));
    }
    if FORWARDING_HEADERS
        .iter()
        .any(|name| headers.contains_key(*name))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forwarded_not_allowed",
            "the dev endpoints answer only requests made on this machine, not ones a proxy or tunnel forwarded \
             (Forwarded or X-Forwarded-* header)",
        ));
    }
    Ok(())
}

/// `127.0.0.1`, `localhost` (any case) or `[::1]`, each alone or with a port (1-65535).
fn is_loopback_host(host: &str) -> bool {
    let (name, port) = if let Some(bracketed) = host.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((address, rest)) => (address, rest),
            None => return false,
        }
    } else {
        match host.find(':') {
            Some(at) => host.split_at(at),
            None => (host, ""),
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| {
            digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok_and(|p| p != 0)
        });
    let name_ok = if host.starts_with('[') {
        name == "::1"
    } else {
        name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost")
    };
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_by_any_of_its_names_with_or_without_a_port() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:3000",
            "localhost",
            "localhost:3000",
            "LOCALHOST:3000",
            "[::1]",
            "[::1]:3000",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn any_other_name_is_not_this_machine() {
        for host in [
            "attacker.example",
            "attacker.example:3000",
            "127.0.0.1.attacker.example",
            "localhost.attacker.example:3000",
            "evil-localhost",
            "localhost.",
            "127.0.0.2:3000",
            "0.0.0.0:3000",
            "[::2]:3000",
            "[::1",
            "::1",
            "[::1]3000",
            "localhost:",
            "localhost:0",
            "localhost:65536",
            "localhost:+3000",
            "localhost:3000:3000",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    fn code(result: Result<(), ApiError>) -> Option<&'static str> {
        result.err().map(|error| error.code)
    }

    #[test]
    fn a_request_is_local_when_host_and_target_say_so_and_nothing_was_forwarded() {
        let path: Uri = "/dev/config".parse().expect("uri");
        assert_eq!(
            code(check_local(&headers(&[("host", "localhost:3000")]), &path)),
            None
        );
        assert_eq!(
            code(check_local(&headers(&[]), &path)),
            Some("host_not_allowed")
        );
        assert_eq!(
            code(check_local(
                &headers(&[("host", "localhost:3000"), ("host", "attacker.example")]),
                &path
            )),
            Some("host_not_allowed")
        );
        let absolute: Uri = "http://attacker.example/dev/config".parse().expect("uri");
        assert_eq!(
            code(check_local(
                &headers(&[("host", "localhost:3000")]),
                &absolute
            )),
            Some("host_not_allowed")
        );
        for name in FORWARDING_HEADERS {
            assert_eq!(
                code(check_local(
                    &headers(&[("host", "localhost:3000"), (name, "203.0.113.7")]),
                    &path
                )),
                Some("forwarded_not_allowed"),
                "{name}"
            );
        }
    }
}
