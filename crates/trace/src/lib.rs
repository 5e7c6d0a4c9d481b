//! Message trace for mqgate: what happened to a client (connects, closes, disconnects) and to
//! a message (published by a device or the backend, pushed to an online client, delivered
//! from an offline queue), kept for a while so an operator can ask "did my device get the
//! message, and when?".
//!
//! ```text
//!  broker events ──▶ TraceRecord ──append (batches)──▶ TraceLog: segments 0, 1, 2, ...
//!                                                        │   (a directory, or memory)
//!  OpenAPI trace query ──▶ Query + time range + Paging ──┘──▶ Page { total, records }
//!  periodic ──▶ TraceLog::sweep(now): by age (3 days), then by size, oldest segment first
//! ```
//!
//! The record types carry the names, codes and reasons the managed service's OpenAPI answers
//! with ([`Action::name`], [`Action::code`], [`Info::text`]), and [`format_time`] gives times
//! in its `yyyy-MM-dd HH:mm:ss.SSS` form. The crate does no networking and takes time as an
//! argument; the directory backing is plain files.
//!
//! # Contract
//!
//! * Appending is cheap (records are encoded into one buffer and written with one call) and
//!   never synced: a crash may lose the last records, never the log. A torn or damaged
//!   record ends the reading of its segment; nothing is written behind it.
//! * A query reads only the segments whose time range overlaps its own.
//! * Decoding never panics on any bytes.
#![warn(missing_docs)]

mod log;
mod query;
mod record;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use log::{TraceConfig, TraceLog, TraceStats};
pub use query::{Page, Paging, Query};
pub use record::{format_time, Action, Info, RecordRef, TraceRecord};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A record's bytes are not a whole, intact record.
    #[error("damaged trace record: {0}")]
    Damaged(&'static str),
    /// A segment file or the directory could not be used.
    #[error("trace log {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

impl TraceError {
    fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        TraceError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
