//! `input_required` rounds with an MCP server (SEP-2322, 2026-07-28): the server answers a
//! `tools/call` with an `InputRequiredResult` instead of a result; the run waits for its caller
//! (`input_required`, the requests kept as the entry's payload), and the caller's answer goes
//! back in the next `tools/call` of the round, with the server's `requestState` as it gave it.
//!
//! The run is the junction between the two sides: whoever answers (an MCP caller of either
//! generation, through the edge, or an A2A or REST caller with a message) answers with a
//! DataPart `{"mcp": {"inputResponses": {key: result}}}`, recorded like any follow-up message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use a2a::{Message, PartContent};
use rmcp::model::{ClientCapabilities, InputRequest, InputRequests, InputRequiredResult, InputResponses, RequestId};
use rmcp::service::{InboundStreamOrigin, RequestContext};
use rmcp::{ErrorData as McpError, RoleClient};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::engine::upstream::{Call, Outcome, Update};

/// Most rounds one call may take before the gateway gives up on the server (as the MCP SDKs
/// bound their own clients).
pub(super) const MAX_ROUNDS: usize = 10;

/// What a round asks, in words: the elicitations' messages, else the kinds of request.
pub(super) fn prompt(r: &InputRequiredResult) -> String {
    let requests = r.input_requests.as_ref();
    let said: Vec<String> = requests
        .into_iter()
        .flatten()
        .filter_map(|(_, q)| match q {
            InputRequest::Elicitation(e) => {
                serde_json::to_value(&e.params).ok()?.get("message")?.as_str().map(String::from)
            }
            _ => None,
        })
        .collect();
    if !said.is_empty() {
        return said.join("\n");
    }
    let asked: Vec<String> = requests
        .into_iter()
        .flatten()
        .map(|(key, q)| {
            let method = serde_json::to_value(q).ok().and_then(|v| v["method"].as_str().map(String::from));
            format!("{} ({key})", method.unwrap_or_else(|| "a request".into()))
        })
        .collect();
    format!("the tool asks the caller for: {}", asked.join(", "))
}

/// The round's requests as the run keeps them (the `input_required` entry's payload):
/// `{"inputRequests": …}` and the server's `requestState` when it gave one.
pub(super) fn requests_json(r: &InputRequiredResult) -> Value {
    let mut v = json!({ "inputRequests": r.input_requests.clone().unwrap_or_default() });
    if let Some(s) = &r.request_state {
        v["requestState"] = json!(s);
    }
    v
}

/// The responses a caller's message carries: its DataPart `{"mcp": {"inputResponses": {…}}}`.
pub fn responses(m: &Message) -> Option<InputResponses> {
    m.parts.iter().find_map(|p| match &p.content {
        PartContent::Data(v) => serde_json::from_value(v.get("mcp")?.get("inputResponses")?.clone()).ok(),
        _ => None,
    })
}

/// Puts round `r` to the run's caller and waits for the answer: the responses, or how the call
/// ends (canceled while waiting). A message without responses is asked again, saying how to
/// answer (each such message is recorded, with its own `input_required` after it).
pub(super) async fn ask(call: &mut Call, r: &InputRequiredResult) -> Result<InputResponses, Outcome> {
    let requests = requests_json(r);
    let mut prompt = prompt(r);
    loop {
        call.send(Update::InputRequired { prompt: prompt.clone(), requests: Some(requests.clone()) }).await;
        let Some(answer) = call.next_message().await else { return Err(Outcome::Canceled) };
        if let Some(given) = responses(&answer) {
            return Ok(given);
        }
        prompt = format!(
            "{}\n(answer with a data part {{\"mcp\": {{\"inputResponses\": {{…}}}}}} holding one result per key of \
             inputRequests)",
            self::prompt(r)
        );
    }
}

/// The server answered round `r` (an `InputRequiredResult`) to the `round`-th request of a call
/// of `what` (a tool, a prompt, a resource): puts it to the run's caller and gives what the next
/// request carries, the caller's responses (none for a round that asks nothing: retried at once)
/// and the server's `requestState` echoed as it gave it (opaque: never read). `Err` is how the
/// call ends: too many rounds, or canceled while waiting (nothing is then in flight upstream).
/// Shared by `tools/call`, `prompts/get` and `resources/read`.
pub(super) async fn next_round(
    call: &mut Call,
    round: &mut usize,
    r: InputRequiredResult,
    what: &str,
) -> Result<(Option<InputResponses>, Option<String>), Outcome> {
    *round += 1;
    if *round > MAX_ROUNDS {
        return Err(Outcome::Failed(format!("{what} asked for input more than {MAX_ROUNDS} times")));
    }
    let given = match r.input_requests.as_ref().is_some_and(|q| !q.is_empty()) {
        true => Some(ask(call, &r).await?),
        false => None,
    };
    Ok((given, r.request_state))
}

/// A request a 2025-11-25 server sent back on a call's stream (`sampling/createMessage`,
/// `elicitation/create`, `roots/list`), for the call to put to its caller as a one-request round.
pub(super) struct BackRequest {
    /// Its key in the round: the request's JSON-RPC id.
    key: String,
    request: InputRequest,
    reply: oneshot::Sender<Result<Value, McpError>>,
}

/// Routes a server's requests to the call whose response stream carried them: rmcp tags each
/// inbound request with the id of that `tools/call` (`InboundStreamOrigin::OutboundRequest`).
#[derive(Clone, Default)]
pub(super) struct BackChannel {
    calls: Arc<Mutex<HashMap<RequestId, mpsc::UnboundedSender<BackRequest>>>>,
    subscribed: Arc<Notify>,
}

/// How long a server's request waits for its call to subscribe (the call can only subscribe
/// once its request is sent, and a quick server may ask before).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);

/// A call's subscription to the requests on its stream; dropping it unsubscribes.
pub(super) struct BackSubscription {
    pub(super) rx: mpsc::UnboundedReceiver<BackRequest>,
    id: RequestId,
    calls: Arc<Mutex<HashMap<RequestId, mpsc::UnboundedSender<BackRequest>>>>,
}

impl Drop for BackSubscription {
    fn drop(&mut self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

impl BackChannel {
    /// The requests on the stream of the call sent as `id`.
    pub(super) fn subscribe(&self, id: RequestId) -> BackSubscription {
        let (tx, rx) = mpsc::unbounded_channel();
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), tx);
        self.subscribed.notify_waiters();
        BackSubscription { rx, id, calls: self.calls.clone() }
    }

    /// Puts the server's `request` to the call whose stream carried it and waits for the
    /// caller's answer. A request on no call's stream (the standalone stream, or a transport
    /// that does not say) is refused: no run asked for it.
    pub(super) async fn ask(&self, cx: &RequestContext<RoleClient>, request: InputRequest) -> Result<Value, McpError> {
        let Some(InboundStreamOrigin::OutboundRequest(call)) = cx.extensions.get::<InboundStreamOrigin>().cloned()
        else {
            return Err(McpError::invalid_params("a request on no call's stream: no run asked for it", None));
        };
        let deadline = tokio::time::Instant::now() + SUBSCRIBE_WAIT;
        let route = loop {
            let subscribed = self.subscribed.notified();
            if let Some(tx) = self.calls.lock().unwrap_or_else(|p| p.into_inner()).get(&call).cloned() {
                break tx;
            }
            if tokio::time::timeout_at(deadline, subscribed).await.is_err() {
                return Err(McpError::invalid_params("a request for a call the gateway is not making", None));
            }
        };
        let (reply, answer) = oneshot::channel();
        let key = match &cx.id {
            RequestId::String(s) => s.to_string(),
            other => serde_json::to_value(other).map(|v| v.to_string()).unwrap_or_default(),
        };
        route
            .send(BackRequest { key, request, reply })
            .map_err(|_| McpError::invalid_params("the call this request belongs to has ended", None))?;
        answer.await.map_err(|_| McpError::internal_error("the call ended before its caller answered", None))?
    }
}

/// A server's request as a round of the run: the run waits for its caller, and the answer (or
/// why there is none) goes back to the server. `Err` when the call was canceled meanwhile.
pub(super) async fn answer_back(call: &mut Call, back: BackRequest) -> Result<(), Outcome> {
    let BackRequest { key, request, reply } = back;
    let round = InputRequiredResult::new(Some(InputRequests::from([(key.clone(), request)])), None);
    match ask(call, &round).await {
        Ok(mut given) => {
            let answer = given.remove(&key).ok_or_else(|| {
                McpError::invalid_params(format!("the caller's answer holds no response for request {key}"), None)
            });
            let _ = reply.send(answer);
            Ok(())
        }
        Err(ended) => {
            let _ = reply.send(Err(McpError::internal_error("the call was canceled", None)));
            Err(ended)
        }
    }
}

/// The capability a request needs of the caller, by name, and whether capabilities hold it.
pub fn needs(request: &InputRequest) -> (&'static str, fn(&ClientCapabilities) -> bool) {
    match request {
        InputRequest::CreateMessage(_) => ("sampling", |c| c.sampling.is_some()),
        InputRequest::ListRoots(_) => ("roots", |c| c.roots.is_some()),
        _ => ("elicitation", |c| c.elicitation.is_some()),
    }
}

/// A server's request the caller of a mirrored session did not declare it can answer: -32021
/// with `data.requiredCapabilities`, answered at once (no round), so the tool decides, as it
/// would had the caller answered so itself.
pub(super) fn undeclared(request: &InputRequest, declared: &ClientCapabilities) -> Option<McpError> {
    let (name, has) = needs(request);
    (!has(declared)).then(|| {
        McpError::new(
            rmcp::model::ErrorCode(-32021),
            format!("the caller did not declare the {name} capability"),
            Some(json!({ "requiredCapabilities": { name: {} } })),
        )
    })
}

/// A server's request as an input request: `{"method", "params"}`.
pub(super) fn input_request(method: &str, params: Option<Value>) -> Result<InputRequest, McpError> {
    let mut v = json!({ "method": method });
    if let Some(p) = params {
        v["params"] = p;
    }
    serde_json::from_value(v).map_err(|e| McpError::invalid_params(format!("{method}: {e}"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(v: Value) -> InputRequiredResult {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_round_is_put_in_words_and_kept_as_given() {
        let r = asked(json!({ "resultType": "input_required", "requestState": "s1", "inputRequests": {
            "name": { "method": "elicitation/create", "params": { "message": "Your name?",
                "requestedSchema": { "type": "object", "properties": { "name": { "type": "string" } } } } },
            "capital": { "method": "sampling/createMessage", "params": { "maxTokens": 10,
                "messages": [{ "role": "user", "content": { "type": "text", "text": "Capital of France?" } }] } } } }));
        assert_eq!(prompt(&r), "Your name?");
        let kept = requests_json(&r);
        assert_eq!(kept["requestState"], "s1");
        assert_eq!(kept["inputRequests"]["name"]["params"]["message"], "Your name?");
        assert_eq!(kept["inputRequests"]["capital"]["method"], "sampling/createMessage");

        let r = asked(json!({ "resultType": "input_required", "inputRequests": {
            "roots": { "method": "roots/list" } } }));
        assert_eq!(prompt(&r), "the tool asks the caller for: roots/list (roots)");
        assert!(requests_json(&r).get("requestState").is_none());
    }

    #[test]
    fn responses_come_from_the_mcp_data_part() {
        let given = json!({ "name": { "action": "accept", "content": { "name": "Ada" } } });
        let m = Message::new(
            a2a::Role::User,
            vec![a2a::Part::text("here"), a2a::Part::data(json!({ "mcp": { "inputResponses": given } }))],
        );
        assert_eq!(serde_json::to_value(responses(&m).unwrap()).unwrap(), given);
        let prose = Message::new(a2a::Role::User, vec![a2a::Part::text("Ada")]);
        assert!(responses(&prose).is_none());
        let other = Message::new(a2a::Role::User, vec![a2a::Part::data(json!({ "name": "Ada" }))]);
        assert!(responses(&other).is_none());
    }

    #[test]
    fn a_servers_requests_become_input_requests() {
        let r = input_request("roots/list", None).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), json!({ "method": "roots/list" }));
        let params = json!({ "message": "Name?", "requestedSchema": { "type": "object", "properties": {} } });
        let r = input_request("elicitation/create", Some(params.clone())).unwrap();
        assert!(matches!(r, InputRequest::Elicitation(_)));
        assert_eq!(serde_json::to_value(&r).unwrap()["params"]["message"], "Name?");
        assert!(input_request("ping", None).is_err(), "only sampling, elicitation and roots");

        let none = ClientCapabilities::default();
        let e = undeclared(&r, &none).expect("elicitation was not declared");
        assert_eq!(e.code.0, -32021);
        assert_eq!(e.data, Some(json!({ "requiredCapabilities": { "elicitation": {} } })));
        let declared: ClientCapabilities = serde_json::from_value(json!({ "elicitation": {} })).unwrap();
        assert!(undeclared(&r, &declared).is_none());
        assert!(undeclared(&input_request("roots/list", None).unwrap(), &declared).is_some());
    }
}
