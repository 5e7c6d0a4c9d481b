//! mqgate-codec: under construction.
