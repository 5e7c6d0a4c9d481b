//! mqgate-auth: under construction.
