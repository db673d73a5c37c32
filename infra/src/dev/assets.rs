//! The pages and scripts the dev server serves: the demo page and the embed example (compiled in), the widget's
//! bundle and the demo page's script, read from `widget/dist/` at each request so `make widget` takes effect without a
//! restart, and the agent console from `agent/dist/` (`make agent`) the same way.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chat_sync::handlers::ApiError;
use sha2::{Digest, Sha256};
use std::path::Path;

const DEMO_PAGE: &str = include_str!("../../static/index.html");
const EMBED_EXAMPLE: &str = include_str!("../../static/embed-example.html");
/// Where `make widget` writes the bundles.
const WIDGET_DIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../widget/dist");
/// Where `make agent` writes the agent console (its page and its bundle), the files a team hosts.
const AGENT_DIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../agent/dist");

/// A built script under `widget/dist/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// `chat-sync-widget.js`: the embeddable widget, the file a site hosts.
    Widget,
    /// `dev-demo.js`: the demo page's CRM view.
    Demo,
    /// `agent-console.js` (in `agent/dist/`): the agent console.
    Console,
}

impl Asset {
    fn file_name(self) -> &'static str {
        match self {
            Asset::Widget => "chat-sync-widget.js",
            Asset::Demo => "dev-demo.js",
            Asset::Console => "agent-console.js",
        }
    }

    fn dist(self) -> &'static str {
        match self {
            Asset::Console => AGENT_DIST,
            Asset::Widget | Asset::Demo => WIDGET_DIST,
        }
    }
}

/// The pages, with the Content-Security-Policy each needs: scripts only from this server, connections only to this
/// server and the Stream the widget talks to (its REST and websocket origins).
pub struct Pages {
    console_csp: String,
    demo_csp: String,
    embed_example: String,
    embed_csp: String,
}

impl Pages {
    /// `origin` is this server's (`http://127.0.0.1:3000`); `stream_base_url` is Stream's, as registration uses it;
    /// `issuer` the agents' identity provider, which the console calls for tokens.
    pub fn new(origin: &str, stream_base_url: &str, issuer: &str) -> Self {
        let stream = stream_origins(stream_base_url);
        let common = format!(
            "default-src 'none'; connect-src 'self' {origin} {stream}; img-src data:; form-action 'none'; \
             base-uri 'none'; frame-ancestors 'none'"
        );
        // The console: its own script and stylesheet, Stream, this server's session endpoint and the provider's
        // token endpoint; it leaves for the provider's sign-in page by navigation, which no directive governs.
        let console_csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' {origin} {stream} {issuer}; \
             img-src data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
        );
        Self {
            console_csp,
            demo_csp: format!("{common}; script-src 'self'; style-src 'unsafe-inline'"),
            // A customer's page with a strict policy: its own inline style allowed by its hash only, the widget from
            // wherever it is hosted. The widget's constructed stylesheet needs no 'unsafe-inline'.
            embed_example: EMBED_EXAMPLE.replace("{{ORIGIN}}", origin),
            embed_csp: format!(
                "{common}; script-src {origin}; style-src {}",
                inline_style_hash(EMBED_EXAMPLE)
            ),
        }
    }

    pub fn demo(&self) -> Response {
        html(DEMO_PAGE.to_owned(), &self.demo_csp)
    }

    /// The embed example; with `identity_token`, as a site renders it for a signed-in visitor: the token its backend
    /// signed (docs/security.md: identity) in the tag's `data-identity-token`. The dev server signs nothing: whoever
    /// opens the page brings the token. Only base64url and dots pass, so nothing given here can change the page's
    /// markup.
    pub fn embed_example(&self, identity_token: Option<&str>) -> Result<Response, ApiError> {
        self.embed_example_page(identity_token)
            .map(|page| html(page, &self.embed_csp))
    }

    fn embed_example_page(&self, identity_token: Option<&str>) -> Result<String, ApiError> {
        let Some(token) = identity_token else {
            return Ok(self.embed_example.clone());
        };
        if !is_token_text(token) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "identityToken must be a JWT: base64url parts joined by dots, at most 4096 characters",
            )
            .with_field("identityToken"));
        }
        Ok(self.embed_example.replacen(
            "<script src=",
            &format!(r#"<script data-identity-token="{token}" src="#),
            1,
        ))
    }

    /// The agent console's page, as `make agent` built it.
    pub async fn console(&self) -> Response {
        let path = Path::new(AGENT_DIST).join("index.html");
        match tokio::fs::read_to_string(&path).await {
            Ok(page) => html(page, &self.console_csp),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "the agent console is not built");
                crate::serve::error_response(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "console_not_built",
                    "agent/dist/index.html is missing: run `make agent`",
                ))
            }
        }
    }

    pub async fn script(&self, asset: Asset) -> Response {
        let path = Path::new(asset.dist()).join(asset.file_name());
        match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let headers = [
                    (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ];
                (headers, bytes).into_response()
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "the widget is not built");
                crate::serve::error_response(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_built",
                    format!("{} is missing: run `make widget agent`", asset.file_name()),
                ))
            }
        }
    }
}

/// A JWT's characters only (base64url, its padding, dots): safe inside a double-quoted HTML attribute as is.
fn is_token_text(token: &str) -> bool {
    (1..=4096).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

/// Whether `make widget` has run: said in the banner, since the pages are empty shells without it.
pub fn widget_built() -> bool {
    Path::new(WIDGET_DIST)
        .join(Asset::Widget.file_name())
        .is_file()
}

fn html(body: String, csp: &str) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// `'sha256-…'` of the page's `<style>` element, the CSP source that allows exactly that inline style; `'none'`
/// when it has none.
fn inline_style_hash(html: &str) -> String {
    let style = html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(style, _)| style);
    match style {
        Some(style) => format!("'sha256-{}'", STANDARD.encode(Sha256::digest(style))),
        None => "'none'".to_owned(),
    }
}

/// `https://chat.stream-io-api.com` → `https://chat.stream-io-api.com wss://chat.stream-io-api.com`: the SDK's REST
/// calls and its websocket (`wsBaseURL` is the base URL with `http` replaced by `ws`).
fn stream_origins(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let websocket = base.replacen("http", "ws", 1);
    format!("{base} {websocket}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_reachable_over_rest_and_websocket() {
        assert_eq!(
            stream_origins("https://chat.stream-io-api.com/"),
            "https://chat.stream-io-api.com wss://chat.stream-io-api.com"
        );
        assert_eq!(
            stream_origins("http://127.0.0.1:4100"),
            "http://127.0.0.1:4100 ws://127.0.0.1:4100"
        );
    }

    #[test]
    fn the_embed_example_points_at_this_server() {
        let pages = Pages::new(
            "http://127.0.0.1:3000",
            "http://127.0.0.1:4100",
            "http://127.0.0.1:4200",
        );
        assert!(pages.embed_example.contains(
            r#"<script src="http://127.0.0.1:3000/chat-sync-widget.js" data-registration-url="http://127.0.0.1:3000/registrations" async></script>"#
        ));
        assert!(!pages.embed_example.contains("{{"));
        assert!(pages.embed_csp.contains(
            "connect-src 'self' http://127.0.0.1:3000 http://127.0.0.1:4100 ws://127.0.0.1:4100;"
        ));
        // No inline style but the page's own, by its hash: the widget must do without.
        assert!(
            !pages.embed_csp.contains("unsafe-inline"),
            "{}",
            pages.embed_csp
        );
        assert!(
            pages.embed_csp.contains("style-src 'sha256-"),
            "{}",
            pages.embed_csp
        );
    }

    #[test]
    fn the_embed_example_carries_a_signed_in_visitors_token_and_nothing_else() {
        let pages = Pages::new(
            "http://127.0.0.1:3000",
            "http://127.0.0.1:4100",
            "http://127.0.0.1:4200",
        );
        let signed_in = pages
            .embed_example_page(Some("eyJh.eyJl.sig-_="))
            .expect("a token");
        assert!(
            signed_in.contains(
                r#"<script data-identity-token="eyJh.eyJl.sig-_=" src="http://127.0.0.1:3000/chat-sync-widget.js""#
            ),
            "{signed_in}"
        );
        assert_eq!(signed_in.matches("<script").count(), 1);
        assert_eq!(
            pages.embed_example_page(None).expect("no token"),
            pages.embed_example
        );
        for bad in ["", "a\"b", "a><script>", "a b", &"a".repeat(4097)] {
            let error = pages.embed_example_page(Some(bad)).expect_err(bad);
            assert_eq!(
                (error.status, error.code),
                (StatusCode::BAD_REQUEST, "invalid_query")
            );
        }
    }

    #[test]
    fn an_inline_style_is_allowed_by_its_hash() {
        // printf 'a{}' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            inline_style_hash("<head><style>a{}</style></head>"),
            "'sha256-X1RutGBrXCt9KkSaXMK7tHftWiRscFHOhxsS8tv8hBk='"
        );
        assert_eq!(inline_style_hash("<p>no style</p>"), "'none'");
    }
}
