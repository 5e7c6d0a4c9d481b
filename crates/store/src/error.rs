//! [`StoreError`]: everything a store can fail with.

use std::path::PathBuf;

/// A store operation failed. Nothing was changed by a failed [`Store::apply`](crate::Store::apply).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data file could not be opened or created: unreadable, not a store, or damaged
    /// beyond what the database repairs on open. The broker must not start empty instead.
    #[error("cannot open store file {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why, from the database layer.
        reason: String,
    },
    /// The file was written by a newer mqgate whose format this version cannot read.
    #[error("store file {path} has format version {found}, newer than {supported} (the newest this mqgate reads); upgrade mqgate")]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u64,
        /// The newest version this build understands.
        supported: u64,
    },
    /// The file was written by an older mqgate in a format this version no longer reads.
    /// Nothing was changed: move the file away to start empty (its queued messages are then
    /// lost), or drain it with the older mqgate first.
    #[error("store file {path} has format version {found}, older than {supported} (the only one this mqgate reads); drain it with the mqgate that wrote it, or move it away to start with an empty store")]
    OlderFormat {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u64,
        /// The version this build reads.
        supported: u64,
    },
    /// A stored record could not be decoded: the file was damaged or edited.
    #[error("corrupt store record in {table}: {reason}")]
    Corrupt {
        /// The table holding the record.
        table: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A session record has a message in flight whose body was not given with it.
    #[error("session {client_id}: in-flight message {message} not supplied")]
    MissingMessage {
        /// The session's client id.
        client_id: String,
        /// The id of the missing message.
        message: u128,
    },
    /// Reading or writing the database failed (disk full, I/O error); the transaction was
    /// rolled back.
    #[error("store I/O failed: {0}")]
    Io(String),
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, reason: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            table,
            reason: reason.to_string(),
        }
    }
}
