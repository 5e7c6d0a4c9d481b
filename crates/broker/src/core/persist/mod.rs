//! Write-through of durable state: the group-commit writer ([`Persist`], [`Ticket`]), and
//! what a persistent session saves and when ([`Saved`], [`PendingAcks`]).
//!
//! The rules (what is written when, and why an acknowledged message survives a crash) are
//! written once, in the repository's `docs/offline-messages.md`, section "Durability: what
//! survives a crash". In one line: one writer thread commits everything waiting as one
//! transaction (one fsync), and a connection acknowledges a message bound for a persistent
//! session, or writes anything to a persistent client, only after the commit that holds it.

mod session;
mod writer;

pub(crate) use session::{committed, enqueue_op, enqueue_retained, AckFailed, PendingAcks, Saved};
pub(crate) use writer::{Persist, StoreFailed, Ticket};
