//! The ferromq client: producers, push and pull consumers, an admin API and the `ferromq`
//! command-line tool, for ferromq and for any Apache RocketMQ cluster.
//!
//! Not built yet: see issue 8 and `../shared/spec/client.md`.
