//! The A2A HTTP+JSON binding. Errors are AIP-193 bodies ([`GatewayError::aip193`]).
//!
//! `GET /tasks` and `GET /tasks/{id}` are shared with the platform REST
//! ([`crate::surface::platform`]), which hands a request with an `A2A-Version` header here.

use std::collections::HashMap;
use std::sync::Arc;

use a2a::error_code as code;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use super::{
    Active, Events, PushOp, camelize, cancel_task, check_content_type, check_request, get_task, int_param,
    json_response, list_tasks, push_op, send_message, send_streaming, sse, subscribe, to_camel,
};
use crate::base::auth::Caller;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// The binding's routes (`GET /tasks` and `GET /tasks/{id}` are the platform router's, which
/// dispatches them).
pub fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/message:send", post(rest_send))
        .route("/message:stream", post(rest_stream_send))
        .route("/tasks/{rest}", post(rest_post_task))
        .route("/tasks/{id}/pushNotificationConfigs", get(rest_push_list).post(rest_push_create))
        .route("/tasks/{id}/pushNotificationConfigs/{config}", get(rest_push_config).delete(rest_push_config))
        .route("/extendedAgentCard", get(rest_extended_card))
}

fn rest_json(v: Value) -> Response {
    json_response(v)
}

fn rest_checks(gw: &Gateway, headers: &HeaderMap, uri: &axum::http::Uri, body: &[u8]) -> Result<Active, GatewayError> {
    check_content_type(headers, body)?;
    check_request(gw, headers, uri.query())
}

fn rest_body(body: &[u8]) -> Result<Value, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::a2a(code::PARSE_ERROR, format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(GatewayError::invalid_params("the body must be a JSON object"));
    }
    Ok(camelize(v))
}

fn rest_stream(events: Result<Events, GatewayError>) -> Response {
    match events {
        Err(e) => e.aip193(),
        Ok(events) => sse(events.map(|ev| ev.to_string())),
    }
}

/// `POST /message:send`.
async fn rest_send(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        let active = rest_checks(&gw, &headers, &uri, &body)?;
        send_message(&gw, &caller, &active, rest_body(&body)?).await
    };
    r.await.map_or_else(|e| e.aip193(), rest_json)
}

/// `POST /message:stream`.
async fn rest_stream_send(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        let active = rest_checks(&gw, &headers, &uri, &body)?;
        send_streaming(&gw, &caller, &active, rest_body(&body)?).await
    };
    rest_stream(r.await)
}

fn query_value(q: &HashMap<String, String>) -> Value {
    Value::Object(q.iter().map(|(k, v)| (to_camel(k), Value::String(v.clone()))).collect())
}

/// `GET /tasks`: ListTasks.
pub(crate) async fn rest_list(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let r = match check_request(&gw, &headers, uri.query()) {
        Ok(_) => list_tasks(&gw, &caller, &query_value(&q)).await,
        Err(e) => Err(e),
    };
    r.map_or_else(|e| e.aip193(), rest_json)
}

/// `GET /tasks/{id}` (GetTask) and `GET /tasks/{id}:subscribe`.
pub(crate) async fn rest_get(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(rest): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let active = match check_request(&gw, &headers, uri.query()) {
        Ok(a) => a,
        Err(e) => return e.aip193(),
    };
    match rest.rsplit_once(':') {
        Some((id, "subscribe")) => rest_stream(subscribe(&gw, &caller, &active, id).await),
        Some((_, action)) => {
            GatewayError::a2a(code::METHOD_NOT_FOUND, format!("GET /tasks/{{id}}:{action} is not an operation"))
                .aip193()
        }
        None => {
            let mut p = query_value(&q);
            p["id"] = json!(rest);
            get_task(&gw, &caller, &active, &p).await.map_or_else(|e| e.aip193(), rest_json)
        }
    }
}

/// `POST /tasks/{id}:cancel` and `POST /tasks/{id}:subscribe`.
async fn rest_post_task(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(rest): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let active = match rest_checks(&gw, &headers, &uri, &body).and_then(|a| rest_body(&body).map(|_| a)) {
        Ok(a) => a,
        Err(e) => return e.aip193(),
    };
    match rest.rsplit_once(':') {
        Some((id, "cancel")) => cancel_task(&gw, &caller, id).await.map_or_else(|e| e.aip193(), rest_json),
        Some((id, "subscribe")) => rest_stream(subscribe(&gw, &caller, &active, id).await),
        _ => GatewayError::a2a(
            code::METHOD_NOT_FOUND,
            format!("POST /tasks/{rest} is not an operation; use :cancel or :subscribe"),
        )
        .aip193(),
    }
}

/// `GET /extendedAgentCard`.
async fn rest_extended_card(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(_caller): axum::Extension<Caller>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    match check_request(&gw, &headers, uri.query()) {
        Ok(_) => ([(header::CONTENT_TYPE, "application/json")], gw.card.json.clone()).into_response(),
        Err(e) => e.aip193(),
    }
}

/// `POST /tasks/{id}/pushNotificationConfigs` (create).
async fn rest_push_create(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(task): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = match rest_checks(&gw, &headers, &uri, &body).and_then(|_| rest_body(&body)) {
        Ok(body) => push_op(&gw, &caller, &task, PushOp::Create(body)).await,
        Err(e) => Err(e),
    };
    r.map_or_else(|e| e.aip193(), rest_json)
}

/// `GET /tasks/{id}/pushNotificationConfigs` (list).
async fn rest_push_list(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(task): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let q = query_value(&q);
    let op = check_request(&gw, &headers, uri.query()).and_then(|_| {
        let page_size = int_param(&q, "pageSize")?;
        let page_token = q.get("pageToken").and_then(Value::as_str).map(String::from);
        Ok(PushOp::List { page_size, page_token })
    });
    let r = match op {
        Ok(op) => push_op(&gw, &caller, &task, op).await,
        Err(e) => Err(e),
    };
    r.map_or_else(|e| e.aip193(), rest_json)
}

/// `GET` and `DELETE` `/tasks/{id}/pushNotificationConfigs/{config}`.
async fn rest_push_config(
    State(gw): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((task, config)): Path<(String, String)>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let op = if method == axum::http::Method::DELETE { PushOp::Delete(config) } else { PushOp::Get(config) };
    let r = match check_request(&gw, &headers, uri.query()) {
        Ok(_) => push_op(&gw, &caller, &task, op).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(v) => rest_json(v),
        Err(e) => e.aip193(),
    }
}
