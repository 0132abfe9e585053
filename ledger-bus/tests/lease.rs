//! The signer's lease against a real nats-server: exclusive, renewed, taken over only after the
//! server expired it when its holder vanished, at once when its holder released it.

mod common;

use std::time::{Duration, Instant};

use ledger_bus::{Lease, LeaseConfig, LogName, Topology, provision};

const TTL: Duration = Duration::from_millis(1500);

async fn two_contenders() -> (common::Nats, Lease, Lease) {
    let nats = common::Nats::single();
    let js = nats.jetstream().await;
    let log = LogName::parse("main").unwrap();
    provision(&js, std::slice::from_ref(&log), &Topology { replicas: 1, lease_ttl: TTL, ..Topology::default() })
        .await
        .unwrap();
    let a = Lease::open(&js, LeaseConfig { log: log.clone(), holder: "a".into(), ttl: TTL }).await.unwrap();
    let b = Lease::open(&js, LeaseConfig { log, holder: "b".into(), ttl: TTL }).await.unwrap();
    (nats, a, b)
}

#[tokio::test]
async fn one_holder_at_a_time_renewing_by_compare_and_set() {
    let (_nats, mut a, mut b) = two_contenders().await;
    let t = a.try_acquire().await.unwrap().expect("a free lease is taken");
    assert_eq!(t.acquired, t.revision);
    assert!(b.try_acquire().await.unwrap().is_none(), "a held lease was taken");
    let r = a.renew().await.unwrap().expect("the holder renews");
    assert_eq!(r.acquired, t.acquired);
    assert!(r.revision > t.revision && r.until >= t.until);
    assert!(b.try_acquire().await.unwrap().is_none(), "a renewed lease was taken");
    assert_eq!(a.term().map(|t| t.acquired), Some(t.acquired));
}

#[tokio::test]
async fn a_vanished_holders_lease_is_taken_only_after_the_server_expired_it() {
    let (_nats, mut a, mut b) = two_contenders().await;
    let sent = Instant::now();
    let t = a.try_acquire().await.unwrap().unwrap();
    drop(a); // a crash: no release

    let taken = loop {
        if let Some(n) = b.try_acquire().await.unwrap() {
            break (Instant::now(), n);
        }
        assert!(sent.elapsed() < TTL * 3, "the lease was never taken over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let waited = taken.0 - sent;
    assert!(waited >= TTL, "taken over {waited:?} after a write that lives {TTL:?}");
    assert!(taken.0 > t.until, "the new term began before the old one ended");
    assert!(taken.1.acquired > t.revision, "revisions name terms in order");
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_and_a_lost_one_cannot_be_renewed() {
    let (_nats, mut a, mut b) = two_contenders().await;
    let first = a.try_acquire().await.unwrap().unwrap();
    a.release().await.unwrap();
    assert!(a.term().is_none());
    let second = b.try_acquire().await.unwrap().expect("a released lease is free");
    assert!(second.acquired > first.revision);

    // a still believes it held `first` (say it was paused): its renewal is refused by the
    // compare-and-set, and it holds nothing.
    let mut stale = a;
    assert!(stale.try_acquire().await.unwrap().is_none());
    assert!(stale.renew().await.unwrap().is_none());
    assert!(b.renew().await.unwrap().is_some());
}

#[tokio::test]
async fn a_driven_lease_is_held_renewed_and_released_when_stopped() {
    let (_nats, a, mut b) = two_contenders().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let (mut terms, task) = a.drive(stop.clone());
    let first = loop {
        terms.changed().await.unwrap();
        if let Some(t) = *terms.borrow() {
            break t;
        }
    };
    // Renewed past the first term's end: the same term, extended.
    tokio::time::sleep_until((first.until + TTL / 4).into()).await;
    let now = (*terms.borrow()).expect("still held");
    assert_eq!(now.acquired, first.acquired);
    assert!(now.until > first.until && now.valid_at(Instant::now()));
    assert!(b.try_acquire().await.unwrap().is_none());

    stop.cancel();
    task.await.unwrap();
    assert_eq!(*terms.borrow(), None);
    let released = Instant::now();
    let t = b.try_acquire().await.unwrap().expect("a stopped driver released the lease");
    assert!(released.elapsed() < TTL / 2 && t.acquired > now.revision);
}
