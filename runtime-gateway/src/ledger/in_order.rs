//! [`InOrder`]: acknowledgements given in `append` order, for sinks whose batches become durable
//! out of order underneath (pipelined publishes on the bus, several logs behind one sink).
//!
//! The rule kept here is the one [`super::LedgerSink`] promises: a batch's success is answered
//! only after every earlier batch's answer, so "the seal is durable" still means "every entry
//! submitted before it is". A failure is answered at once: nothing of it is durable, so it
//! cannot be durable before an earlier batch.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ledger_core::Result;

use super::{AppendDone, Durable};

#[derive(Default)]
struct State {
    /// The number of the next batch to answer.
    next: u64,
    /// The number the next batch gets.
    issued: u64,
    /// Batches answered, by number: the acknowledgements still held back (`None` for a
    /// failure, answered at once).
    ready: BTreeMap<u64, Option<(AppendDone, Durable)>>,
}

/// Numbers batches as they are appended and answers them in that order.
#[derive(Default)]
pub(crate) struct InOrder(Mutex<State>);

impl InOrder {
    /// The number of the batch being appended now.
    pub(crate) fn issue(&self) -> u64 {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.issued += 1;
        s.issued - 1
    }

    /// Batch `n` is done: gives its acknowledgement once every earlier batch is answered, and
    /// every later one it held back; a failure at once.
    pub(crate) fn finish(&self, n: u64, done: AppendDone, outcome: Result<Durable>) {
        let mut release = Vec::new();
        let failed = {
            let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let (held, failed) = match outcome {
                Ok(durable) => (Some((done, durable)), None),
                Err(e) => (None, Some((done, e))),
            };
            s.ready.insert(n, held);
            loop {
                let next = s.next;
                let Some(ready) = s.ready.remove(&next) else { break };
                release.extend(ready);
                s.next += 1;
            }
            failed
        };
        // Callbacks run outside the lock: one may append again.
        if let Some((done, e)) = failed {
            done(Err(e));
        }
        for (done, durable) in release {
            done(Ok(durable));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn successes_are_answered_in_issue_order_and_failures_at_once() {
        let order = InOrder::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let note = |tag: &'static str| -> AppendDone {
            let seen = seen.clone();
            Box::new(move |r| seen.lock().unwrap().push((tag, r.is_ok())))
        };
        let (a, b, c) = (order.issue(), order.issue(), order.issue());
        order.finish(c, note("c"), Ok(Durable::Spooled));
        order.finish(b, note("b"), Err(ledger_core::Error::Closed));
        assert_eq!(*seen.lock().unwrap(), vec![("b", false)], "c waits for a; b's failure is answered at once");
        order.finish(a, note("a"), Ok(Durable::Spooled));
        assert_eq!(*seen.lock().unwrap(), vec![("b", false), ("a", true), ("c", true)]);
    }
}
