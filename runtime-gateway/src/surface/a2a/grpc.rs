//! The A2A 1.0 gRPC binding (`lf.a2a.v1.A2AService`, A2A §10), compiled from the
//! specification's own a2a.proto (`build.rs`). Every method converts its request to the A2A JSON
//! form (the proto3 JSON mapping, which is what the JSON-RPC and HTTP+JSON bindings carry) and
//! calls the same shared operation as those bindings, so one engine runs every task however it
//! arrived: one run per task, every transition recorded. Service parameters come from gRPC
//! metadata (`a2a-version`, `a2a-extensions`, `authorization`, checked by the same code as the
//! HTTP headers); errors are `google.rpc.Status` with the A2A error's gRPC code (§5.4) and an
//! `ErrorInfo` (reason, domain `a2a-protocol.org`) in its details.
//!
//! It is served on the gateway's one listener (HTTP/2 beside HTTP/1), behind the same caller
//! authentication as the other surfaces.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt as _};
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::{
    Active, Events, PushOp, cancel_task, check_request, get_task, list_tasks, push_op, send_message, send_streaming,
    subscribe,
};
use crate::base::auth::Caller;
use crate::surface::error::GatewayError;
use crate::surface::state::Gateway;

/// The types and service of `lf.a2a.v1`, generated (prost, tonic) with their proto3 JSON forms
/// (pbjson).
#[allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("lf.a2a.v1");
    include!(concat!(env!("OUT_DIR"), "/lf.a2a.v1.serde.rs"));
}

use proto::a2a_service_server::{A2aService, A2aServiceServer};

/// The gRPC service, to mount at `/lf.a2a.v1.A2AService/*`.
pub fn service(gw: Arc<Gateway>) -> A2aServiceServer<A2aGrpc> {
    A2aServiceServer::new(A2aGrpc { gw })
}

/// The A2A gRPC service over the gateway.
#[derive(Clone, Debug)]
pub struct A2aGrpc {
    gw: Arc<Gateway>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::StreamResponse, Status>> + Send>>;

/// A request's message as A2A JSON.
fn to_json<T: serde::Serialize>(m: &T) -> Result<Value, Status> {
    serde_json::to_value(m).map_err(|e| Status::internal(format!("encoding the request as JSON: {e}")))
}

/// An answer of the shared operations as a proto message.
fn from_json<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, Status> {
    serde_json::from_value(v).map_err(|e| Status::internal(format!("the {what} does not map onto lf.a2a.v1: {e}")))
}

fn events(events: Events) -> EventStream {
    Box::pin(events.map(|ev| from_json::<proto::StreamResponse>(ev, "stream event")))
}

impl A2aGrpc {
    /// The caller (set by the authentication layer) and the request's active extensions, after
    /// the version check: the same checks, in the same order, as the HTTP bindings.
    fn begin<T>(&self, req: &Request<T>) -> Result<(Caller, Active), Status> {
        let caller = req
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| GatewayError::Unauthenticated("unauthenticated".into()).grpc())?;
        let headers = req.metadata().clone().into_headers();
        let active = check_request(&self.gw, &headers, None)?;
        Ok((caller, active))
    }
}

#[tonic::async_trait]
impl A2aService for A2aGrpc {
    async fn send_message(
        &self,
        req: Request<proto::SendMessageRequest>,
    ) -> Result<Response<proto::SendMessageResponse>, Status> {
        let (caller, active) = self.begin(&req)?;
        let v = send_message(&self.gw, &caller, &active, to_json(req.get_ref())?).await?;
        Ok(Response::new(from_json(v, "answer")?))
    }

    type SendStreamingMessageStream = EventStream;

    async fn send_streaming_message(
        &self,
        req: Request<proto::SendMessageRequest>,
    ) -> Result<Response<Self::SendStreamingMessageStream>, Status> {
        let (caller, active) = self.begin(&req)?;
        let ev = send_streaming(&self.gw, &caller, &active, to_json(req.get_ref())?).await?;
        Ok(Response::new(events(ev)))
    }

    async fn get_task(&self, req: Request<proto::GetTaskRequest>) -> Result<Response<proto::Task>, Status> {
        let (caller, active) = self.begin(&req)?;
        let v = get_task(&self.gw, &caller, &active, &to_json(req.get_ref())?).await?;
        Ok(Response::new(from_json(v, "task")?))
    }

    async fn list_tasks(
        &self,
        req: Request<proto::ListTasksRequest>,
    ) -> Result<Response<proto::ListTasksResponse>, Status> {
        let (caller, _) = self.begin(&req)?;
        let v = list_tasks(&self.gw, &caller, &to_json(req.get_ref())?).await?;
        Ok(Response::new(from_json(v, "task list")?))
    }

    async fn cancel_task(&self, req: Request<proto::CancelTaskRequest>) -> Result<Response<proto::Task>, Status> {
        let (caller, _) = self.begin(&req)?;
        let v = cancel_task(&self.gw, &caller, &req.get_ref().id).await?;
        Ok(Response::new(from_json(v, "task")?))
    }

    type SubscribeToTaskStream = EventStream;

    async fn subscribe_to_task(
        &self,
        req: Request<proto::SubscribeToTaskRequest>,
    ) -> Result<Response<Self::SubscribeToTaskStream>, Status> {
        let (caller, active) = self.begin(&req)?;
        let ev = subscribe(&self.gw, &caller, &active, &req.get_ref().id).await?;
        Ok(Response::new(events(ev)))
    }

    async fn create_task_push_notification_config(
        &self,
        req: Request<proto::TaskPushNotificationConfig>,
    ) -> Result<Response<proto::TaskPushNotificationConfig>, Status> {
        let (caller, _) = self.begin(&req)?;
        let task = req.get_ref().task_id.clone();
        let v = push_op(&self.gw, &caller, &task, PushOp::Create(to_json(req.get_ref())?)).await?;
        Ok(Response::new(from_json(v, "push config")?))
    }

    async fn get_task_push_notification_config(
        &self,
        req: Request<proto::GetTaskPushNotificationConfigRequest>,
    ) -> Result<Response<proto::TaskPushNotificationConfig>, Status> {
        let (caller, _) = self.begin(&req)?;
        let r = req.get_ref();
        let v = push_op(&self.gw, &caller, &r.task_id, PushOp::Get(r.id.clone())).await?;
        Ok(Response::new(from_json(v, "push config")?))
    }

    async fn list_task_push_notification_configs(
        &self,
        req: Request<proto::ListTaskPushNotificationConfigsRequest>,
    ) -> Result<Response<proto::ListTaskPushNotificationConfigsResponse>, Status> {
        let (caller, _) = self.begin(&req)?;
        let r = req.get_ref();
        let op = PushOp::List {
            page_size: (r.page_size != 0).then_some(i64::from(r.page_size)),
            page_token: (!r.page_token.is_empty()).then(|| r.page_token.clone()),
        };
        let v = push_op(&self.gw, &caller, &r.task_id, op).await?;
        Ok(Response::new(from_json(v, "push config list")?))
    }

    async fn get_extended_agent_card(
        &self,
        req: Request<proto::GetExtendedAgentCardRequest>,
    ) -> Result<Response<proto::AgentCard>, Status> {
        self.begin(&req)?;
        let card = serde_json::to_value(&self.gw.card.card).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(from_json(card, "agent card")?))
    }

    async fn delete_task_push_notification_config(
        &self,
        req: Request<proto::DeleteTaskPushNotificationConfigRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        let (caller, _) = self.begin(&req)?;
        let r = req.get_ref();
        push_op(&self.gw, &caller, &r.task_id, PushOp::Delete(r.id.clone())).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }
}
