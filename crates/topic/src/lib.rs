//! mqgate-topic: under construction.
