//! # The benchmark manual
//!
//! The rules the generator follows, in prose, so a number in a report can be traced to how
//! it was measured.
//!
//! ## Scenarios (issue 10)
//!
//! - **fan-in**: 4 publishers send to one subscriber on the topic `bench/shared`, QoS 0 or 1,
//!   64 B or 1 KiB payloads. Each message reaches one receiver.
//! - **fan-out**: 1 publisher, 100 subscribers on `bench/shared`, QoS 0; each message is
//!   expected at every subscriber.
//! - **many-topics**: 10 000 subscribers, subscriber `i` on `dev/{i}/cmd`; message `m` goes
//!   to `dev/{mix(m) mod 10000}/cmd`, a fixed pseudo-random spread (splitmix64) that is the
//!   same for every broker.
//! - **p2p**: the same 10 000 clients subscribe to nothing; message `m` goes to
//!   `bench/p2p/{clientId}`. Only brokers with P2P addresses (mqgate) deliver these.
//! - **wildcard**: 10 000 filters over 100 connections, a third each of `wc/{j}/+/state`,
//!   `wc/{j}/#` and `wc/+/{j}/cmd`. Every published topic matches exactly one filter of the
//!   10 000 (numbers never collide with the literal levels), so a broker does the work of
//!   rejecting 9 999.
//! - **latency**: one publisher at a fixed rate (10 000 msg/s by default) to one subscriber.
//!   The publisher stamps the send time into the payload just before encoding; the
//!   subscriber subtracts it from its receive time (one process, one monotonic clock).
//!   p50, p99 and p99.9 are nearest-rank over every delivery.
//! - **connections**: N idle clients (CONNECT, CONNACK, nothing else), at most
//!   `--handshakes` (128) handshakes in flight, spread over 4 tasks (in one task the generator, not a fast
//!   broker, set the pace: about 30 k/s here, 36-41 k/s with 4). Connect
//!   rate is N over the time to the last CONNACK; memory per connection is the broker's RSS
//!   growth, read 1 s after the last CONNACK, divided by N.
//! - **durable** (`mqgate-bench durable`, `benches/compare.sh --durable`): two phases around a
//!   SIGKILL. *fill*: N clients (1 000) connect with cleanSession = 0, subscribe to
//!   `dev/{i}/cmd` at QoS 1 and disconnect; 4 publishers then send 64 B QoS 1 messages
//!   spread over them as in many-topics, each with at most `--inflight` unacknowledged.
//!   `deliveries_per_s` is acknowledged messages over the time from the first publish to the
//!   last PUBACK, and the acknowledged sequence numbers are written to `--acked-file`. The
//!   script then measures the data files, SIGKILLs the broker and starts it again on the
//!   same data. *drain*: the clients reconnect with cleanSession = 0 and read until every
//!   acknowledged message arrived or nothing arrived for 3 s; `acked_lost` counts the
//!   acknowledged messages that did not arrive.
//!
//! ## Accounting
//!
//! - Every payload starts with 16 bytes: the message's sequence number and its send time.
//! - `sent` counts PUBLISHes written; `acked` distinct PUBACKs (QoS 1); `received` every
//!   PUBLISH a subscriber read, duplicates included.
//! - `lost` = expected deliveries of the messages sent − distinct deliveries;
//!   `duplicated` = received − distinct (− deliveries that name no message of this run).
//! - `acked_lost` counts messages whose PUBACK arrived but which did not reach every receiver
//!   they were meant for. A broker that acknowledges and then drops shows it here. QoS 0
//!   losses are legal but still reported.
//! - `deliveries_per_s` is distinct deliveries over the time from the first publish to the
//!   last delivery. A run ends when every expected delivery arrived, when nothing arrived for
//!   1.5 s after the publishers finished (once at least one delivery arrived), or at
//!   `--seconds`; `timed_out` says which.
//! - Broker CPU seconds are read from `/proc/PID/stat` (utime + stime, `USER_HZ` = 100)
//!   around the measured part; "per million" divides by distinct deliveries. Peak RSS is
//!   sampled every 100 ms from `/proc/PID/status`; `VmHWM` (peak since the broker started) is
//!   reported too. The generator's own CPU comes from `/proc/self/stat`.
//!
//! ## Source addresses
//!
//! Against an IPv4 loopback target every connection binds a source address in 127.0.0.1 ..=
//! 127.0.0.254, a new one per 1 000 connections, starting at an address derived from the
//! process id. Consecutive runs that open 10 000 connections each would otherwise exhaust one
//! address's ~28 k ephemeral ports with TIME_WAIT sockets (EADDRINUSE), or make the kernel's
//! port search, not the broker, set the connect rate.
//!
//! ## Keeping the generator out of the way
//!
//! Subscribers are driven 64 connections per task; a publisher's writer and acknowledgement
//! reader are two futures of one task; up to 64 PUBLISHes are encoded into one buffer and
//! written with one call; a subscriber answers everything one read brought with one write of
//! PUBACKs. QoS 1 publishers keep at most `--inflight` (256) messages unacknowledged.
