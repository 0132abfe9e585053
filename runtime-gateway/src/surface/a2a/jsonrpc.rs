//! The A2A JSON-RPC binding: one request at `POST /`; streaming methods answer with SSE.

use std::sync::Arc;

use a2a::{JsonRpcId, error_code as code};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use super::{
    Events, PushOp, camelize, cancel_task, check_content_type, check_version, extensions, get_task, int_param,
    json_response, list_tasks, push_op, send_message, send_streaming, sse, subscribe,
};
use crate::base::auth::Caller;
use crate::engine::push::PushError;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// `POST /`.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/", post(jsonrpc))
}

fn rpc_ok(id: &JsonRpcId, result: Value) -> Response {
    json_response(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
}

fn rpc_err(id: &JsonRpcId, e: &GatewayError) -> Response {
    let (error, http) = e.jsonrpc();
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": error });
    match http {
        Some(s) => {
            let mut r = (s, axum::Json(body)).into_response();
            if s == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            r
        }
        None => json_response(body),
    }
}

/// `POST /`: one JSON-RPC request.
async fn jsonrpc(
    State(gw): State<Arc<Gateway>>,
    caller: Result<axum::Extension<Caller>, axum::extract::rejection::ExtensionRejection>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id_of = |v: &Value| match v.get("id") {
        Some(Value::String(s)) => JsonRpcId::String(s.clone()),
        Some(Value::Number(n)) => n.as_i64().map_or(JsonRpcId::Null, JsonRpcId::Number),
        _ => JsonRpcId::Null,
    };
    if let Err(e) = check_content_type(&headers, &body) {
        return rpc_err(&JsonRpcId::Null, &e);
    }
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let id = parsed.as_ref().map(id_of).unwrap_or(JsonRpcId::Null);
    if let Err(e) = check_version(&headers, uri.query()) {
        return rpc_err(&id, &e);
    }
    let req = match parsed {
        Ok(v) => v,
        Err(e) => {
            return rpc_err(
                &JsonRpcId::Null,
                &GatewayError::a2a(code::PARSE_ERROR, format!("the body is not JSON: {e}")),
            );
        }
    };
    let Some(obj) = req.as_object() else {
        let what = if req.is_array() { "batch requests are not supported" } else { "a request must be a JSON object" };
        return rpc_err(&JsonRpcId::Null, &GatewayError::a2a(code::INVALID_REQUEST, what));
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return rpc_err(&id, &GatewayError::a2a(code::INVALID_REQUEST, "jsonrpc must be \"2.0\""));
    }
    if !matches!(obj.get("id"), Some(Value::String(_) | Value::Number(_))) {
        return rpc_err(&id, &GatewayError::a2a(code::INVALID_REQUEST, "id must be a string or an integer"));
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return rpc_err(&id, &GatewayError::a2a(code::INVALID_REQUEST, "method must be a string"));
    };
    let p = camelize(obj.get("params").cloned().unwrap_or(json!({})));
    if !p.is_object() {
        return rpc_err(&id, &GatewayError::invalid_params("params must be an object"));
    }
    if !a2a::methods::is_valid(method) {
        return rpc_err(
            &id,
            &GatewayError::a2a(code::METHOD_NOT_FOUND, format!("method {method:?} is not an A2A 1.0 method")),
        );
    }
    let caller = match caller {
        Ok(axum::Extension(c)) => c,
        Err(_) => {
            return rpc_err(&id, &GatewayError::Unauthenticated("unauthenticated".into()));
        }
    };
    let active = match extensions::activate(&gw, &headers) {
        Ok(a) => a,
        Err(e) => return rpc_err(&id, &e),
    };
    use a2a::methods as m;
    let stream = |events: Result<Events, GatewayError>| match events {
        Err(e) => rpc_err(&id, &e),
        Ok(events) => {
            let id = id.clone();
            sse(events.map(move |ev| json!({ "jsonrpc": "2.0", "id": id, "result": ev }).to_string()))
        }
    };
    let result = match method {
        m::SEND_MESSAGE => send_message(&gw, &caller, &active, p).await,
        m::SEND_STREAMING_MESSAGE => return stream(send_streaming(&gw, &caller, &active, p).await),
        m::SUBSCRIBE_TO_TASK => {
            let events = match p.get("id").and_then(Value::as_str) {
                Some(task) => subscribe(&gw, &caller, &active, task).await,
                None => Err(GatewayError::invalid_params("params.id is required")),
            };
            return stream(events);
        }
        m::GET_TASK => get_task(&gw, &caller, &active, &p).await,
        m::LIST_TASKS => list_tasks(&gw, &caller, &p).await,
        m::CANCEL_TASK => match p.get("id").and_then(Value::as_str) {
            Some(task) => cancel_task(&gw, &caller, task).await,
            None => Err(GatewayError::invalid_params("params.id is required")),
        },
        m::GET_EXTENDED_AGENT_CARD => Ok(serde_json::to_value(&gw.card.card).expect("serialise")),
        _ => {
            if !gw.push.enabled() {
                Err(GatewayError::Push(PushError::Disabled))
            } else {
                push_rpc(&gw, &caller, method, p).await
            }
        }
    };
    match result {
        Ok(v) => rpc_ok(&id, v),
        Err(e) => rpc_err(&id, &e),
    }
}

/// The JSON-RPC form of a push config method.
async fn push_rpc(gw: &Gateway, caller: &Caller, method: &str, p: Value) -> Result<Value, GatewayError> {
    use a2a::methods as m;
    let str_param = |k: &str| p.get(k).and_then(Value::as_str).map(String::from);
    let task = str_param("taskId").ok_or_else(|| GatewayError::invalid_params("params.taskId is required"))?;
    let id = || str_param("id").ok_or_else(|| GatewayError::invalid_params("params.id is required"));
    let op = match method {
        m::CREATE_PUSH_CONFIG => PushOp::Create(p.clone()),
        m::GET_PUSH_CONFIG => PushOp::Get(id()?),
        m::DELETE_PUSH_CONFIG => PushOp::Delete(id()?),
        _ => PushOp::List { page_size: int_param(&p, "pageSize")?, page_token: str_param("pageToken") },
    };
    push_op(gw, caller, &task, op).await
}
