//! Serves the Lambda handlers over plain HTTP (the dev server and the benchmarks): the same handler fns the
//! Lambdas run, behind a small axum ↔ `lambda_http` adapter instead of API Gateway / Function URLs.

use axum::body::Body as AxumBody;
use axum::http::{header, StatusCode};
use axum::response::Response;
use chat_sync::handlers::ApiError;
use futures::StreamExt;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use std::sync::Arc;

/// Largest body the adapter passes on (the handlers enforce their own, smaller limits).
pub const MAX_BODY: usize = 2 * 1024 * 1024;
/// How much of an oversize body is read and thrown away before the 413: answering while the client is still
/// sending makes the server close the connection, and the client sees a reset instead of the JSON error. Past this,
/// the connection is closed anyway (as API Gateway and Function URLs do with their own limits).
pub const MAX_DISCARDED_BODY: usize = 16 * 1024 * 1024;

fn payload_too_large() -> Response {
    error_response(ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body must be at most {MAX_BODY} bytes"),
    ))
}

/// A client's mistake answered as the handlers answer it (`{"error", "code"}`): the dev server's own routes and this
/// adapter's refusals use it, so every answer of the local server has the deployed shape.
pub fn error_response(error: ApiError) -> Response {
    from_lambda(error.into_response())
}

/// Converts an HTTP request into what a Lambda handler receives. Over `MAX_BODY` → `Err(413 response)`, sent once
/// the body has been read to its end (up to `MAX_DISCARDED_BODY`).
pub async fn to_lambda(request: axum::extract::Request) -> Result<lambda_http::Request, Response> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_DISCARDED_BODY) {
        return Err(payload_too_large());
    }
    let mut kept = Vec::new();
    let mut received = 0usize;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            // The client went away mid-body: nobody reads this answer, but it must not reach the handler.
            return Err(error_response(ApiError::new(
                StatusCode::BAD_REQUEST,
                "incomplete_body",
                "the request body ended early",
            )));
        };
        received = received.saturating_add(chunk.len());
        if received <= MAX_BODY {
            kept.extend_from_slice(&chunk);
        } else if received > MAX_DISCARDED_BODY {
            break;
        }
    }
    if received > MAX_BODY {
        return Err(payload_too_large());
    }
    let body = if kept.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(kept) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let request = lambda_http::Request::from_parts(parts, body);
    Ok(match peer {
        Some(ip) => request.with_request_context(source_ip(ip)),
        None => request,
    })
}

/// What API Gateway (HTTP API, payload 2.0) says about the caller: its address as `requestContext.http.sourceIp`.
pub fn source_ip(ip: std::net::IpAddr) -> RequestContext {
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.http.source_ip = Some(ip.to_string());
    RequestContext::ApiGatewayV2(context)
}

/// Converts a Lambda handler's response back into an HTTP response.
pub fn from_lambda(response: lambda_http::Response<Body>) -> Response {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    Response::from_parts(parts, body)
}

/// A Lambda HTTP handler: what the registration and webhook handlers are.
#[async_trait::async_trait]
pub trait HttpHandler: Send + Sync + 'static {
    async fn call(&self, request: lambda_http::Request) -> lambda_http::Response<Body>;
}

#[async_trait::async_trait]
impl HttpHandler for chat_sync::handlers::registration::Registration {
    async fn call(&self, request: lambda_http::Request) -> lambda_http::Response<Body> {
        self.handle(request).await
    }
}

#[async_trait::async_trait]
impl HttpHandler for chat_sync::handlers::agent_sessions::AgentSessions {
    async fn call(&self, request: lambda_http::Request) -> lambda_http::Response<Body> {
        self.handle(request).await
    }
}

#[async_trait::async_trait]
impl HttpHandler for chat_sync::handlers::hubspot_webhooks::HubSpotWebhooks {
    async fn call(&self, request: lambda_http::Request) -> lambda_http::Response<Body> {
        self.handle(request).await
    }
}

/// A long-lived server answers first and flushes the transcript in a spawned task, as the Lambda does with its
/// internal extension.
#[async_trait::async_trait]
impl HttpHandler for chat_sync::handlers::webhook::Webhook {
    async fn call(&self, request: lambda_http::Request) -> lambda_http::Response<Body> {
        let (response, flush) = self.receive(request).await;
        if let Some(flush) = flush {
            tokio::spawn(flush.run());
        }
        response
    }
}

/// An axum route (any method: the handlers answer 405 themselves) that runs `handler`.
pub fn route(handler: Arc<dyn HttpHandler>) -> axum::routing::MethodRouter {
    axum::routing::any(move |request: axum::extract::Request| {
        let handler = handler.clone();
        async move {
            match to_lambda(request).await {
                Ok(request) => from_lambda(handler.call(request).await),
                Err(response) => response,
            }
        }
    })
}
