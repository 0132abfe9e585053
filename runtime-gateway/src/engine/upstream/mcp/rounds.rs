//! `input_required` rounds with an MCP server (SEP-2322, 2026-07-28): the server answers a
//! `tools/call` with an `InputRequiredResult` instead of a result; the run waits for its caller
//! (`input_required`, the requests kept as the entry's payload), and the caller's answer goes
//! back in the next `tools/call` of the round, with the server's `requestState` as it gave it.
//!
//! The run is the junction between the two sides: whoever answers (an MCP caller of either
//! generation, through the edge, or an A2A or REST caller with a message) answers with a
//! DataPart `{"mcp": {"inputResponses": {key: result}}}`, recorded like any follow-up message.

use a2a::{Message, PartContent};
use rmcp::model::{InputRequest, InputRequiredResult, InputResponses};
use serde_json::{Value, json};

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
}
