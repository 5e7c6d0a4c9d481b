//! Transport: the listeners ([`listener`]: TCP, and TLS ([`tls`]) and WebSocket ([`ws`])
//! wrapped around it) and a connection's byte stream with its buffers and decoder ([`io`]).
//!
//! The listeners know nothing of MQTT sessions: an accepted stream, once its TLS or
//! WebSocket handshake is done, goes to whatever implements
//! [`Serve`](crate::connection::Serve) (the connection layer's context).

pub(crate) mod io;
pub(crate) mod listener;
pub(crate) mod tls;
pub(crate) mod ws;
