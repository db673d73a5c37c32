//! The REST routes, as a client (server SDK or browser SDK) calls them. Every request goes through one pipeline
//! ([`guarded`]): record the call, authenticate, decide injected faults, sleep the configured latency, then run the
//! route's logic and render Stream's answer.

use super::auth::Actor;
use super::channels::Watch;
use super::errors::{injected, StreamError};
use super::StreamState;
use crate::support::Req;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

type St = State<Arc<StreamState>>;
type Outcome = Result<(StatusCode, Value), StreamError>;

pub(crate) fn router(state: Arc<StreamState>) -> Router {
    Router::new()
        .route(
            "/users",
            post(upsert_users)
                .patch(partial_update_users)
                .get(query_users),
        )
        .route("/users/delete", post(delete_users))
        .route("/tasks/{id}", get(get_task))
        .route(
            "/channeltypes",
            get(list_channel_types).post(create_channel_type),
        )
        .route(
            "/channeltypes/{name}",
            get(get_channel_type).put(update_channel_type),
        )
        .route(
            "/channels/{type}/{id}",
            post(update_channel)
                .patch(update_channel_partial)
                .delete(delete_channel),
        )
        .route("/connect", get(super::websocket::connect))
        .route("/channels", post(query_channels))
        .route("/channels/{type}/{id}/query", post(query_channel))
        .route("/channels/{type}/{id}/stop-watching", post(stop_watching))
        .route("/channels/{type}/{id}/read", post(mark_read))
        .route("/channels/{type}/{id}/event", post(send_event))
        .route("/channels/{type}/{id}/message", post(send_message))
        .route(
            "/messages/{id}",
            get(get_message).post(update_message).delete(delete_message),
        )
        .route("/messages/{id}/undelete", post(undelete_message))
        .route("/app", get(get_app).patch(update_app))
        .route("/roles", get(list_roles).post(create_role))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(super::cors::cors))
        .with_state(state)
}

/// Records the call, authenticates, applies faults and latency, then runs `logic` and renders its outcome.
async fn guarded(
    s: &StreamState,
    route: &'static str,
    req: &Req,
    allow_user: bool,
    logic: impl FnOnce(Actor) -> Outcome,
) -> Response {
    let call = s.recorder.begin(route, req);
    let verdict = s
        .authenticate(req, allow_user)
        .map(|actor| (actor, s.faults.decide(route)));
    s.faults.delay().await;
    let response = match verdict {
        Err(e) => e.into_response(),
        Ok((_, Some(status))) => injected(status),
        Ok((actor, None)) => match logic(actor) {
            Ok((status, mut body)) => {
                if let Some(object) = body.as_object_mut() {
                    object.insert("duration".to_owned(), Value::String("1.00ms".to_owned()));
                }
                (status, Json(body)).into_response()
            }
            Err(e) => e.into_response(),
        },
    };
    call.finish(response).await
}

fn parse_json(endpoint: &str, req: &Req) -> Result<Value, StreamError> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| StreamError::input(endpoint, format!("invalid JSON body: {e}")))
}

fn path_or_404<T>(path: Result<Path<T>, PathRejection>) -> Result<T, StreamError> {
    path.map(|Path(p)| p)
        .map_err(|e| StreamError::not_found("Route", format!("invalid path: {e}")))
}

async fn upsert_users(State(s): St, req: Req) -> Response {
    guarded(&s, "upsert_users", &req, false, |_| {
        let body = parse_json("UpdateUsers", &req)?;
        Ok((StatusCode::CREATED, s.upsert_users(&body)?))
    })
    .await
}

async fn partial_update_users(State(s): St, req: Req) -> Response {
    guarded(&s, "partial_update_users", &req, true, |actor| {
        let body = parse_json("UpdateUsersPartial", &req)?;
        Ok((StatusCode::OK, s.partial_update_users(&actor, &body)?))
    })
    .await
}

async fn query_users(State(s): St, req: Req) -> Response {
    guarded(&s, "query_users", &req, true, |actor| {
        let query = req.query();
        let users = s.query_users(&actor, query.get("payload").map(String::as_str))?;
        Ok((StatusCode::OK, users))
    })
    .await
}

async fn delete_users(State(s): St, req: Req) -> Response {
    guarded(&s, "delete_users", &req, false, |_| {
        let body = parse_json("DeleteUsers", &req)?;
        Ok((StatusCode::CREATED, s.delete_users(&body)?))
    })
    .await
}

async fn get_task(State(s): St, path: Result<Path<String>, PathRejection>, req: Req) -> Response {
    guarded(&s, "get_task", &req, false, |_| {
        let id = path_or_404(path)?;
        Ok((StatusCode::OK, s.task(&id)?))
    })
    .await
}

async fn list_channel_types(State(s): St, req: Req) -> Response {
    guarded(&s, "list_channel_types", &req, false, |_| {
        Ok((StatusCode::OK, s.channel_types()))
    })
    .await
}

async fn get_channel_type(
    State(s): St,
    path: Result<Path<String>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "get_channel_type", &req, false, |_| {
        let name = path_or_404(path)?;
        Ok((StatusCode::OK, s.channel_type(&name)?))
    })
    .await
}

async fn update_channel_type(
    State(s): St,
    path: Result<Path<String>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "update_channel_type", &req, false, |_| {
        let name = path_or_404(path)?;
        let body = parse_json("UpdateChannelType", &req)?;
        Ok((StatusCode::CREATED, s.update_channel_type(&name, &body)?))
    })
    .await
}

async fn create_channel_type(State(s): St, req: Req) -> Response {
    guarded(&s, "create_channel_type", &req, false, |_| {
        let body = parse_json("CreateChannelType", &req)?;
        Ok((StatusCode::CREATED, s.create_channel_type(&body)?))
    })
    .await
}

async fn update_channel(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "update_channel", &req, true, |actor| {
        let (kind, id) = path_or_404(path)?;
        let body = parse_json("UpdateChannel", &req)?;
        Ok((
            StatusCode::CREATED,
            s.update_channel(&kind, &id, &actor, &body)?,
        ))
    })
    .await
}

async fn update_channel_partial(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "update_channel_partial", &req, true, |actor| {
        let (kind, id) = path_or_404(path)?;
        let body = parse_json("UpdateChannelPartial", &req)?;
        Ok((
            StatusCode::OK,
            s.update_channel_partial(&kind, &id, &actor, &body)?,
        ))
    })
    .await
}

async fn delete_channel(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "delete_channel", &req, true, |actor| {
        let (kind, id) = path_or_404(path)?;
        let hard = flag("DeleteChannel", &req, "hard_delete")?;
        Ok((StatusCode::OK, s.delete_channel(&kind, &id, &actor, hard)?))
    })
    .await
}

async fn query_channel(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "query_channel", &req, true, |actor| {
        let (kind, id) = path_or_404(path)?;
        let body = parse_json("GetOrCreateChannel", &req)?;
        let query = req.query();
        let watch = Watch::from_body(&body, query.get("connection_id").map(String::as_str));
        let (created, state) = s.query_channel(&kind, &id, &actor, &body, &watch)?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, state))
    })
    .await
}

async fn query_channels(State(s): St, req: Req) -> Response {
    guarded(&s, "query_channels", &req, true, |actor| {
        let body = parse_json("QueryChannels", &req)?;
        let query = req.query();
        let connection_id = query.get("connection_id").map(String::as_str);
        Ok((
            StatusCode::CREATED,
            s.query_channels(&actor, &body, connection_id)?,
        ))
    })
    .await
}

async fn stop_watching(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "stop_watching", &req, true, |_| {
        let (kind, id) = path_or_404(path)?;
        let query = req.query();
        let connection_id = query.get("connection_id").map(String::as_str);
        Ok((
            StatusCode::CREATED,
            s.stop_watching(&kind, &id, connection_id)?,
        ))
    })
    .await
}

async fn send_event(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "send_event", &req, true, |actor| {
        let (kind, id) = path_or_404(path)?;
        let body = parse_json("SendEvent", &req)?;
        Ok((
            StatusCode::CREATED,
            s.send_event(&kind, &id, &actor, &body)?,
        ))
    })
    .await
}

async fn mark_read(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "mark_read", &req, true, |actor| {
        let (kind, id) = path_or_404(path)?;
        let body = parse_json("MarkRead", &req)?;
        Ok((StatusCode::CREATED, s.mark_read(&kind, &id, &actor, &body)?))
    })
    .await
}

async fn get_app(State(s): St, req: Req) -> Response {
    guarded(&s, "get_app", &req, false, |_| {
        Ok((StatusCode::OK, json!({ "app": s.app() })))
    })
    .await
}

async fn list_roles(State(s): St, req: Req) -> Response {
    guarded(&s, "list_roles", &req, false, |_| {
        Ok((StatusCode::OK, s.list_roles()))
    })
    .await
}

async fn create_role(State(s): St, req: Req) -> Response {
    guarded(&s, "create_role", &req, false, |_| {
        let body = parse_json("CreateRole", &req)?;
        Ok((StatusCode::CREATED, s.create_role(&body)?))
    })
    .await
}

async fn update_app(State(s): St, req: Req) -> Response {
    guarded(&s, "update_app", &req, false, |_| {
        let body = parse_json("UpdateApp", &req)?;
        Ok((StatusCode::OK, s.update_app(&body)?))
    })
    .await
}

async fn send_message(
    State(s): St,
    path: Result<Path<(String, String)>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "send_message", &req, true, |actor| {
        let (kind, id) = path_or_404(path)?;
        let body = parse_json("SendMessage", &req)?;
        let message = body.get("message").cloned().unwrap_or(Value::Null);
        let stored = s.create_message(&kind, &id, &actor, &message)?;
        Ok((StatusCode::CREATED, json!({ "message": stored })))
    })
    .await
}

async fn update_message(
    State(s): St,
    path: Result<Path<String>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "update_message", &req, true, |actor| {
        let id = path_or_404(path)?;
        let body = parse_json("UpdateMessage", &req)?;
        let message = body.get("message").cloned().unwrap_or(Value::Null);
        let stored = s.update_message(&id, &actor, &message)?;
        Ok((StatusCode::CREATED, json!({ "message": stored })))
    })
    .await
}

async fn delete_message(
    State(s): St,
    path: Result<Path<String>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "delete_message", &req, true, |actor| {
        let id = path_or_404(path)?;
        let hard = flag("DeleteMessage", &req, "hard")?;
        let stored = s.delete_message(&id, hard, &actor)?;
        Ok((StatusCode::OK, json!({ "message": stored })))
    })
    .await
}

async fn undelete_message(
    State(s): St,
    path: Result<Path<String>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "undelete_message", &req, false, |_| {
        let id = path_or_404(path)?;
        let body = parse_json("UndeleteMessage", &req)?;
        let Some(by) = body.get("undeleted_by").and_then(Value::as_str) else {
            return Err(StreamError::input(
                "UndeleteMessage",
                "undeleted_by is a required field",
            ));
        };
        let stored = s.undelete_message(&id, by)?;
        Ok((StatusCode::CREATED, json!({ "message": stored })))
    })
    .await
}

async fn get_message(
    State(s): St,
    path: Result<Path<String>, PathRejection>,
    req: Req,
) -> Response {
    guarded(&s, "get_message", &req, true, |_| {
        let id = path_or_404(path)?;
        Ok((StatusCode::OK, json!({ "message": s.get_message(&id)? })))
    })
    .await
}

/// A boolean query parameter (`true`/`1`, `false`/`0`, absent = false); anything else is refused.
fn flag(endpoint: &str, req: &Req, name: &str) -> Result<bool, StreamError> {
    match req.query().get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(StreamError::input(
            endpoint,
            format!("{name} must be a boolean, got {other}"),
        )),
    }
}

async fn not_found(State(s): St, req: Req) -> Response {
    let call = s.recorder.begin("not_found", &req);
    let error = StreamError::not_found(
        "Route",
        format!("no route for {} {}", req.method, req.uri.path()),
    );
    call.finish(error.into_response()).await
}

async fn method_not_allowed(State(s): St, req: Req) -> Response {
    let call = s.recorder.begin("method_not_allowed", &req);
    let error = StreamError::new(
        405,
        4,
        "Route",
        format!("method {} is not allowed on {}", req.method, req.uri.path()),
    );
    call.finish(error.into_response()).await
}
