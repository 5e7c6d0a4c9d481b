//! mqgate-session: under construction.
