//! CORS, as Stream answers it: the browser SDK calls the API from any site with the user's token in `Authorization`
//! (never cookies), so every origin may call it. A preflight is answered before authentication (browsers send it
//! without credentials) and is not recorded as a call; every other answer carries `Access-Control-Allow-Origin: *`.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
};
use http::{HeaderValue, Method, StatusCode};

const METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// What the SDK sends when the preflight does not list its headers (it always does).
const HEADERS: &str =
    "authorization, content-type, stream-auth-type, x-stream-client, x-client-request-id";

pub(crate) async fn cors(request: Request, next: Next) -> Response {
    let any = HeaderValue::from_static("*");
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    {
        let requested = request
            .headers()
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static(HEADERS));
        let mut response = StatusCode::OK.into_response();
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, any);
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(METHODS),
        );
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested);
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        return response;
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, any);
    response
}
