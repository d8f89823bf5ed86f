//! The ferromq broker: RocketMQ remoting processors in front of the `ferromq-store` engine.
//!
//! Not built yet: see issue 7 and `../shared/spec/broker.md`.
