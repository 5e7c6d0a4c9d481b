//! The four questions the OpenAPI's trace actions ask, and paging.

use crate::{Action, TraceRecord};

/// Which records a query selects (besides its time range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `QueryMqttTraceDevice`: a client's connects, closes and disconnects.
    Device {
        /// The client.
        client_id: String,
    },
    /// `QueryMqttTraceMessageOfClient`: what a client published and received.
    MessagesOfClient {
        /// The client.
        client_id: String,
    },
    /// `QueryMqttTraceMessagePublish`: how a message entered the broker.
    MessagePublish {
        /// The message.
        message: u128,
    },
    /// `QueryMqttTraceMessageSubscribe`: to whom a message was delivered, live or from an
    /// offline queue; only to `client_id` when given.
    MessageSubscribe {
        /// The message.
        message: u128,
        /// Only this receiver, when given.
        client_id: Option<String>,
    },
}

impl Query {
    /// Whether `record` answers this query.
    pub fn selects(&self, record: &TraceRecord) -> bool {
        match self {
            Query::Device { client_id } => {
                record.action.is_device() && record.client_id == *client_id
            }
            Query::MessagesOfClient { client_id } => {
                matches!(
                    record.action,
                    Action::PubMqtt | Action::Sub | Action::PushOffline
                ) && record.client_id == *client_id
            }
            Query::MessagePublish { message } => {
                matches!(record.action, Action::PubMqtt | Action::PubMq)
                    && record.message == Some(*message)
            }
            Query::MessageSubscribe { message, client_id } => {
                matches!(record.action, Action::Sub | Action::PushOffline)
                    && record.message == Some(*message)
                    && client_id.as_ref().is_none_or(|c| *c == record.client_id)
            }
        }
    }
}

/// Which page of the answer, and in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// The page, from 1; a page past the end is empty.
    pub current_page: u64,
    /// Records per page, 1 to [`Paging::MAX_PAGE_SIZE`] (clamped).
    pub page_size: u64,
    /// Newest first.
    pub reverse: bool,
}

impl Paging {
    /// The most records a page holds, as the OpenAPI allows.
    pub const MAX_PAGE_SIZE: u64 = 100;

    /// The first page of `page_size` records, oldest first.
    pub fn first(page_size: u64) -> Self {
        Paging {
            current_page: 1,
            page_size,
            reverse: false,
        }
    }

    /// This page of `all`.
    pub(crate) fn page(&self, all: Vec<TraceRecord>) -> Page {
        let total = all.len() as u64;
        let size = self.page_size.clamp(1, Self::MAX_PAGE_SIZE);
        let skip = self
            .current_page
            .max(1)
            .saturating_sub(1)
            .saturating_mul(size);
        let records = all
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(size).unwrap_or(usize::MAX))
            .collect();
        Page { total, records }
    }
}

/// One page of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Records the query selects in its time range, over all pages.
    pub total: u64,
    /// This page's records.
    pub records: Vec<TraceRecord>,
}
