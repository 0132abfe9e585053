//! The names every process of a bus deployment agrees on (`docs/FORMATS.md` §12).
//!
//! | name | what |
//! |---|---|
//! | stream `LEDGER_<L>` | ingest, subjects `ledger.<L>.in.>` (one subject per gateway) |
//! | stream `LEDGER_<L>_OUT` | `ledger.<L>.cp` (signed checkpoints) and `ledger.<L>.result.>` (outcomes) |
//! | KV bucket `LEDGER_LEASES`, key `<L>` | the lease of the signer of log `<L>` |

use std::fmt;

use crate::Error;

/// The header that makes an ingest message a payload: the lowercase hex BLAKE3 of its body,
/// which is the payload's bytes (no header: the body is a batch of entries).
pub const PAYLOAD_HEADER: &str = "A2A-Ledger-Payload";

/// The key-value bucket holding one lease per log.
pub const LEASE_BUCKET: &str = "LEDGER_LEASES";

/// A log's name on the bus: 1 to 32 of `a-z`, `0-9` and `-`, so that it is one NATS subject
/// token, part of a stream name and a key-value key without escaping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogName(String);

impl LogName {
    /// `name`, or why it cannot name a log.
    pub fn parse(name: &str) -> Result<LogName, Error> {
        let ok = (1..=32).contains(&name.len()) && name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'));
        if ok { Ok(LogName(name.to_owned())) } else { Err(Error::LogName(name.to_owned())) }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ingest stream, `LEDGER_<L>`.
    pub fn ingest_stream(&self) -> String {
        format!("LEDGER_{}", self.0)
    }

    /// The ingest stream's subjects, `ledger.<L>.in.>`.
    pub fn ingest_subjects(&self) -> String {
        format!("ledger.{}.in.>", self.0)
    }

    /// The subject one gateway publishes on, `ledger.<L>.in.<gateway>`.
    pub fn ingest_subject(&self, gateway: &str) -> String {
        format!("ledger.{}.in.{gateway}", self.0)
    }

    /// The stream of what the sequencer says back, `LEDGER_<L>_OUT`.
    pub fn out_stream(&self) -> String {
        format!("LEDGER_{}_OUT", self.0)
    }

    /// The subject of signed checkpoints, `ledger.<L>.cp`.
    pub fn checkpoint_subject(&self) -> String {
        format!("ledger.{}.cp", self.0)
    }

    /// The subjects of outcomes, `ledger.<L>.result.>` (one per gateway).
    pub fn result_subjects(&self) -> String {
        format!("ledger.{}.result.>", self.0)
    }

    /// The subject of one gateway's outcomes, `ledger.<L>.result.<gateway>`.
    pub fn result_subject(&self, gateway: &str) -> String {
        format!("ledger.{}.result.{gateway}", self.0)
    }

    /// What gateway `gateway` may do on the NATS servers, and nothing more: publish its own
    /// batches, read its results (the JetStream API of an ordered consumer on the output stream)
    /// and receive replies under its own inbox prefix, `_INBOX_<gateway>`. Not the checkpoint or
    /// result subjects, not another gateway's subject, no other JetStream API. `(publish,
    /// subscribe)` allow lists, as a NATS server's `permissions` take them.
    pub fn gateway_permissions(&self, gateway: &str) -> (Vec<String>, Vec<String>) {
        let out = self.out_stream();
        let publish = vec![
            self.ingest_subject(gateway),
            "$JS.API.INFO".to_owned(),
            format!("$JS.API.STREAM.INFO.{out}"),
            // Consumers only of its own results (the subject ends with the consumer's filter).
            format!("$JS.API.CONSUMER.CREATE.{out}.*.{}", self.result_subject(gateway)),
            format!("$JS.API.CONSUMER.INFO.{out}.>"),
            format!("$JS.API.CONSUMER.DELETE.{out}.>"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{out}.>"),
        ];
        (publish, vec![format!("_INBOX_{gateway}.>")])
    }

    /// The lease's key in [`LEASE_BUCKET`]: the log's name.
    pub fn lease_key(&self) -> &str {
        &self.0
    }
}

/// What gateway `gateway` may do on the NATS servers when it writes to every log of `logs` (a
/// gateway with sharded logs): the union of each log's [`LogName::gateway_permissions`], each
/// subject once, in the order of first appearance. `(publish, subscribe)` allow lists.
pub fn gateway_permissions(logs: &[LogName], gateway: &str) -> (Vec<String>, Vec<String>) {
    let (mut publish, mut subscribe) = (Vec::new(), Vec::new());
    for log in logs {
        let (p, s) = log.gateway_permissions(gateway);
        for (all, more) in [(&mut publish, p), (&mut subscribe, s)] {
            for subject in more {
                if !all.contains(&subject) {
                    all.push(subject);
                }
            }
        }
    }
    (publish, subscribe)
}

impl fmt::Display for LogName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_name_is_one_subject_token_and_part_of_a_stream_name() {
        let l = LogName::parse("main-2").unwrap();
        assert_eq!(l.ingest_stream(), "LEDGER_main-2");
        assert_eq!(l.ingest_subject("gw-1"), "ledger.main-2.in.gw-1");
        assert_eq!(l.out_stream(), "LEDGER_main-2_OUT");
        assert_eq!(l.checkpoint_subject(), "ledger.main-2.cp");
        assert_eq!(l.result_subject("gw-1"), "ledger.main-2.result.gw-1");
        for bad in ["", "Main", "a.b", "a b", "a>", "a*", &"x".repeat(33)] {
            let e = LogName::parse(bad).unwrap_err();
            assert!(e.to_string().contains("1 to 32 of a-z"), "{bad:?}: {e}");
        }
        assert!(LogName::parse(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn the_permissions_of_several_logs_are_their_union_each_subject_once() {
        let (main, billing) = (LogName::parse("main").unwrap(), LogName::parse("billing").unwrap());
        let (p_main, s_main) = main.gateway_permissions("gw-1");
        let (p_billing, _) = billing.gateway_permissions("gw-1");
        let (publish, subscribe) = gateway_permissions(&[main.clone(), billing.clone()], "gw-1");
        assert_eq!(gateway_permissions(std::slice::from_ref(&main), "gw-1"), (p_main.clone(), s_main.clone()));
        for subject in p_main.iter().chain(&p_billing) {
            assert_eq!(publish.iter().filter(|s| *s == subject).count(), 1, "{subject} in {publish:?}");
        }
        assert_eq!(publish.len(), p_main.len() + p_billing.len() - 1, "only $JS.API.INFO is shared: {publish:?}");
        assert_eq!(&publish[..p_main.len()], &p_main[..]);
        assert!(publish.contains(&billing.ingest_subject("gw-1")) && publish.contains(&main.ingest_subject("gw-1")));
        assert_eq!(subscribe, s_main);
        // The same log twice adds nothing.
        assert_eq!(gateway_permissions(&[main.clone(), main], "gw-1"), (p_main, s_main));
    }
}
