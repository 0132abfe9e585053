//! What the sequencer says back about each ingest message (`docs/FORMATS.md` §12): one result per
//! message, published by the lease holder on `ledger.<L>.result.<gateway>` (stream
//! `LEDGER_<L>_OUT`) with `Nats-Msg-Id: r/<position>` ([`result_msg_id`]), so that a new holder
//! publishing the same result again inside the stream's duplicate window is dropped.
//!
//! The body is JSON, one of
//! - `{"position": <stream seq>, "indices": [<index>, …]}`: the batch was appended, each entry at
//!   the index given, in the batch's order (an idempotent duplicate gets its first copy's index);
//! - `{"position": <stream seq>, "error": {"code": <text>, "message": <text>}}`: the batch was
//!   refused and nothing of it appended.
//!
//! Decoding is strict: an unknown field, a missing one, or both `indices` and `error` is refused,
//! so a result a gateway acts on has exactly one reading.
//!
//! ```
//! use ledger_bus::results::{BatchResult, Refusal};
//! let ok = BatchResult { position: 7, outcome: Ok(vec![41, 42]) };
//! assert_eq!(ok.to_json(), br#"{"position":7,"indices":[41,42]}"#);
//! assert_eq!(BatchResult::from_json(&ok.to_json()).unwrap(), ok);
//! let refused = BatchResult {
//!     position: 8,
//!     outcome: Err(Refusal { code: "seq_gap".into(), message: "run r: seq 3 after 1".into() }),
//! };
//! assert_eq!(BatchResult::from_json(&refused.to_json()).unwrap(), refused);
//! assert!(BatchResult::from_json(br#"{"position":7,"indices":[1],"extra":0}"#).is_err());
//! ```

use serde::{Deserialize, Serialize};

use crate::Error;

/// What became of one ingest message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchResult {
    /// The message's stream sequence in `LEDGER_<L>`.
    pub position: u64,
    /// Each entry's index, in the batch's order, or why the batch was refused.
    pub outcome: Result<Vec<u64>, Refusal>,
}

/// Why a batch was refused: a stable code (a `ledger_wire::ErrorCode` string where one fits)
/// and a message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// The stable code.
    pub code: String,
    /// What was wrong, for people.
    pub message: String,
}

/// The `Nats-Msg-Id` of the result for the ingest message at `position`: `r/<position>`.
pub fn result_msg_id(position: u64) -> String {
    format!("r/{position}")
}

/// The JSON object on the wire: exactly one of `indices` and `error`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    position: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    indices: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Refusal>,
}

impl BatchResult {
    /// The result's body.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = match &self.outcome {
            Ok(indices) => Wire { position: self.position, indices: Some(indices.clone()), error: None },
            Err(refusal) => Wire { position: self.position, indices: None, error: Some(refusal.clone()) },
        };
        serde_json::to_vec(&wire).expect("a result serializes")
    }

    /// The result in `body`, or why it is not one.
    pub fn from_json(body: &[u8]) -> Result<BatchResult, Error> {
        let wire: Wire = serde_json::from_slice(body).map_err(|e| Error::Result(e.to_string()))?;
        let outcome = match (wire.indices, wire.error) {
            (Some(indices), None) => Ok(indices),
            (None, Some(refusal)) => Err(refusal),
            (Some(_), Some(_)) => return Err(Error::Result("both \"indices\" and \"error\"".into())),
            (None, None) => return Err(Error::Result("neither \"indices\" nor \"error\"".into())),
        };
        Ok(BatchResult { position: wire.position, outcome })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_outcomes_round_trip_with_their_exact_bytes() {
        let ok = BatchResult { position: 1, outcome: Ok(vec![]) };
        assert_eq!(ok.to_json(), br#"{"position":1,"indices":[]}"#);
        assert_eq!(BatchResult::from_json(&ok.to_json()).unwrap(), ok);
        let refused = BatchResult {
            position: u64::MAX,
            outcome: Err(Refusal { code: "not_permitted".into(), message: "actor \"x\"".into() }),
        };
        assert_eq!(
            refused.to_json(),
            format!(r#"{{"position":{},"error":{{"code":"not_permitted","message":"actor \"x\""}}}}"#, u64::MAX)
                .into_bytes()
        );
        assert_eq!(BatchResult::from_json(&refused.to_json()).unwrap(), refused);
        assert_eq!(result_msg_id(42), "r/42");
    }

    #[test]
    fn a_malformed_result_is_refused_naming_what_is_wrong() {
        for (body, says) in [
            (&br#"{"position":1,"indices":[2],"error":{"code":"a","message":"b"}}"#[..], "both"),
            (br#"{"position":1}"#, "neither"),
            (br#"{"indices":[1]}"#, "missing field `position`"),
            (br#"{"position":1,"indices":[1],"gateway":"g"}"#, "unknown field `gateway`"),
            (br#"{"position":1,"error":{"code":"a","message":"b","index":3}}"#, "unknown field `index`"),
            (br#"{"position":1,"error":{"code":"a"}}"#, "missing field `message`"),
            (br#"{"position":-1,"indices":[]}"#, "invalid value"),
            (br#"{"position":1,"indices":[1.5]}"#, "invalid type"),
            (b"not json", "expected"),
        ] {
            let e = BatchResult::from_json(body).unwrap_err();
            assert!(matches!(e, Error::Result(_)), "{e:?}");
            assert!(e.to_string().contains(says), "{}: {e}", String::from_utf8_lossy(body));
        }
    }
}
