//! Principals, bearer tokens and what each role may do.
//!
//! Security rules kept here:
//! - a token is never stored or logged: principals hold its SHA-256, and a request's token is
//!   hashed before it is looked up;
//! - an `ingest` principal appends only entries whose `actor` is one of its identities, and
//!   registers (`identity.registered` in run `id/<name>`) only those identities; nobody else
//!   appends at all;
//! - `owner` reads only runs whose `task.accepted` names one of its callers; `ingest` reads only
//!   runs opened (seq 0) by one of its identities; `auditor` and `admin` read everything.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Result, bail};
use ledger_core::entry::IDENTITY_RUN_PREFIX;
use ledger_core::{Entry, EntryView, Event, Kind};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::ApiError;

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Appends entries as its identities.
    Ingest,
    /// Reads everything.
    Auditor,
    /// Reads the runs whose caller it is.
    Owner,
    /// Reads everything and administers the server.
    Admin,
}

/// One principal of the configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// A name for logs and metrics.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Lowercase hex SHA-256 of its bearer token.
    pub token_sha256: String,
    /// `ingest`: the service identities it may write as.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<String>,
    /// `owner`: the callers (as `task.accepted` names them) whose runs it may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<String>,
}

impl Principal {
    /// Checks the principal is well formed.
    pub fn check(&self) -> Result<()> {
        if hex::decode(&self.token_sha256).map(|b| b.len()) != Ok(32) {
            bail!("token_sha256 must be 64 hex digits (the SHA-256 of the token)");
        }
        match self.role {
            Role::Ingest if self.identities.is_empty() => bail!("an ingest principal needs identities"),
            Role::Owner if self.callers.is_empty() => bail!("an owner principal needs callers"),
            _ => Ok(()),
        }
    }

    /// May it read the whole log (entries, proofs, packs, metrics)?
    pub fn reads_all(&self) -> bool {
        matches!(self.role, Role::Auditor | Role::Admin)
    }

    /// May it append `e`? The reason when not.
    pub fn may_append(&self, e: &EntryView<'_>) -> Result<(), String> {
        if self.role != Role::Ingest {
            return Err(format!("principal {:?} has role {:?}; only ingest principals append", self.name, self.role));
        }
        let actor = e.actor();
        if !self.identities.iter().any(|i| i == actor) {
            return Err(format!("actor {actor:?} is not one of the identities this token may write as"));
        }
        if e.kind() == Kind::IdentityRegistered {
            let who = e.run().strip_prefix(IDENTITY_RUN_PREFIX).unwrap_or_default();
            if !self.identities.iter().any(|i| i == who) {
                return Err(format!("this token may not register the identity {who:?}"));
            }
        }
        Ok(())
    }

    /// May it read the run whose first entry (seq 0) is `accepted`? The rule of
    /// [`Principal::may_read_run`] for a run the catalog lists, which names its `task.accepted`
    /// at seq 0: an owner reads it if its caller is one of the owner's, an ingest principal if
    /// one of its identities wrote it.
    pub fn may_read_accepted(&self, accepted: &EntryView<'_>) -> bool {
        match self.role {
            Role::Auditor | Role::Admin => true,
            Role::Ingest => accepted.seq() == 0 && self.identities.iter().any(|i| i == accepted.actor()),
            Role::Owner => accepted.accepted().is_some_and(|a| self.callers.iter().any(|c| c == a.caller)),
        }
    }

    /// May it read the run made of `entries` (decoded)?
    pub fn may_read_run<'a>(&self, mut entries: impl Iterator<Item = &'a Entry>) -> bool {
        match self.role {
            Role::Auditor | Role::Admin => true,
            // A run belongs to the identity that opened it (its seq 0): another gateway's token
            // must not read it by appending an entry of its own to it.
            Role::Ingest => entries.any(|e| e.seq == 0 && self.identities.contains(&e.actor)),
            Role::Owner => entries.any(|e| match &e.event {
                Event::TaskAccepted { caller, .. } => self.callers.contains(caller),
                _ => false,
            }),
        }
    }
}

/// Lowercase hex SHA-256 of a token.
pub fn token_hash_hex(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Principals by token hash.
#[derive(Debug, Default)]
pub struct Principals {
    by_hash: HashMap<[u8; 32], Arc<Principal>>,
}

impl Principals {
    /// Indexes the configured principals.
    pub fn new(list: &[Principal]) -> Result<Principals> {
        let mut by_hash = HashMap::new();
        for p in list {
            p.check()?;
            let h: [u8; 32] = hex::decode(&p.token_sha256)?.try_into().expect("checked: 32 bytes");
            if by_hash.insert(h, Arc::new(p.clone())).is_some() {
                bail!("two principals share one token (the second is {:?})", p.name);
            }
        }
        Ok(Principals { by_hash })
    }

    /// The principal of an `Authorization` header value (`Bearer <token>`).
    pub fn authenticate(&self, header: Option<&str>) -> Result<Arc<Principal>, ApiError> {
        let Some(value) = header else {
            return Err(ApiError::unauthenticated(
                "this endpoint needs a bearer token (Authorization: Bearer <token>)",
            ));
        };
        let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
            return Err(ApiError::unauthenticated("the Authorization header must be \"Bearer <token>\""));
        };
        let h: [u8; 32] = sha2::Sha256::digest(token.trim().as_bytes()).into();
        self.by_hash.get(&h).cloned().ok_or_else(|| ApiError::unauthenticated("unknown token"))
    }
}
