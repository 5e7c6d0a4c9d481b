//! mqgate-rocketmq: under construction.
