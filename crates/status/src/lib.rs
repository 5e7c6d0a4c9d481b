//! mqgate-status: under construction.
