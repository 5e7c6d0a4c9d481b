//! One channel's state: confirms, consumers, delivery tags, the prefetch windows and the
//! content being assembled.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;

use crate::props::BasicProperties;

/// A consumer on a channel.
#[derive(Debug)]
pub(crate) struct Consumer {
    pub(crate) no_ack: bool,
    /// `consume-ok` was sent (or not wanted): deliveries may go out.
    pub(crate) active: bool,
    /// Per-consumer prefetch window in messages (0 = none), fixed when it started.
    pub(crate) prefetch: u16,
    /// Its unacknowledged deliveries.
    pub(crate) unacked: u32,
    /// A delivery found the window full: tell the driver when it opens.
    pub(crate) waiting: bool,
}

/// A `basic.publish` whose content is arriving.
#[derive(Debug)]
pub(crate) struct Assembly {
    pub(crate) delivery_tag: Option<u64>,
    pub(crate) exchange: String,
    pub(crate) routing_key: String,
    pub(crate) mandatory: bool,
    /// Set by the header frame: body size and properties.
    pub(crate) header: Option<(u64, BasicProperties)>,
    /// The first body frame while it is the only one.
    pub(crate) first: Option<Bytes>,
    /// Later body frames, once there is more than one.
    pub(crate) rest: Option<BytesMut>,
    pub(crate) received: u64,
}

impl Assembly {
    /// Adds a body frame: a single frame stays a slice of the receive buffer, several are
    /// joined.
    pub(crate) fn push(&mut self, part: Bytes) {
        self.received += part.len() as u64;
        if let Some(joined) = &mut self.rest {
            joined.extend_from_slice(&part);
        } else if let Some(first) = self.first.take() {
            let mut joined = BytesMut::with_capacity(first.len() + part.len());
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&part);
            self.rest = Some(joined);
        } else {
            self.first = Some(part);
        }
    }

    /// The body received.
    pub(crate) fn take_body(&mut self) -> Bytes {
        match (self.rest.take(), self.first.take()) {
            (Some(joined), _) => joined.freeze(),
            (None, Some(first)) => first,
            (None, None) => Bytes::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelState {
    Open,
    /// The server sent `channel.close` and waits for `close-ok`; everything else is dropped.
    Closing,
}

#[derive(Debug)]
pub(crate) struct Channel {
    /// Which incarnation of this channel number (unique per connection).
    pub(crate) epoch: u64,
    pub(crate) state: ChannelState,
    pub(crate) confirm: bool,
    /// The last publish tag handed out in confirm mode.
    pub(crate) publish_seq: u64,
    /// `channel.flow` from the client: `false` pauses deliveries.
    pub(crate) flow: bool,
    /// The window of consumers started from now on (`basic.qos`, global = false).
    pub(crate) consumer_prefetch: u16,
    /// The channel-wide window (`basic.qos`, global = true).
    pub(crate) channel_prefetch: u16,
    pub(crate) consumers: HashMap<String, Consumer>,
    /// The last delivery tag handed out.
    pub(crate) delivery_seq: u64,
    /// Unacknowledged delivery tag -> consumer tag.
    pub(crate) unacked: BTreeMap<u64, String>,
    pub(crate) content: Option<Assembly>,
}

impl Channel {
    pub(crate) fn new(epoch: u64) -> Self {
        Self {
            epoch,
            state: ChannelState::Open,
            confirm: false,
            publish_seq: 0,
            flow: true,
            consumer_prefetch: 0,
            channel_prefetch: 0,
            consumers: HashMap::new(),
            delivery_seq: 0,
            unacked: BTreeMap::new(),
            content: None,
        }
    }

    /// The consumer may take one more delivery now.
    pub(crate) fn has_room(&self, consumer: &Consumer) -> bool {
        if !consumer.active || !self.flow {
            return false;
        }
        if consumer.no_ack {
            return true;
        }
        (consumer.prefetch == 0 || consumer.unacked < u32::from(consumer.prefetch))
            && (self.channel_prefetch == 0
                || self.unacked.len() < usize::from(self.channel_prefetch))
    }

    /// Resolves an acknowledgement's tag: the listed tags, or `None` for an unknown one.
    /// `multiple` with tag 0 means everything outstanding.
    pub(crate) fn resolve(&self, tag: u64, multiple: bool) -> Option<Vec<u64>> {
        if multiple {
            if tag == 0 {
                return Some(self.unacked.keys().copied().collect());
            }
            if !self.unacked.contains_key(&tag) {
                return None;
            }
            Some(self.unacked.range(..=tag).map(|(t, _)| *t).collect())
        } else if self.unacked.contains_key(&tag) {
            Some(vec![tag])
        } else {
            None
        }
    }

    /// Settles the tags (all known); returns the consumers whose window opened.
    pub(crate) fn settle(&mut self, tags: &[u64]) -> Vec<String> {
        for tag in tags {
            if let Some(ctag) = self.unacked.remove(tag) {
                if let Some(c) = self.consumers.get_mut(&ctag) {
                    c.unacked = c.unacked.saturating_sub(1);
                }
            }
        }
        self.wake()
    }

    /// The waiting consumers that now have room (their `waiting` flag is cleared).
    pub(crate) fn wake(&mut self) -> Vec<String> {
        let ready: Vec<String> = self
            .consumers
            .iter()
            .filter(|(_, c)| c.waiting && self.has_room(c))
            .map(|(t, _)| t.clone())
            .collect();
        for t in &ready {
            if let Some(c) = self.consumers.get_mut(t) {
                c.waiting = false;
            }
        }
        ready
    }
}
