//! The ferromq name server: the stateless route registry of a RocketMQ cluster.
//!
//! Brokers register their topics with every name server; producers and consumers ask any
//! one of them for a topic's route. Name servers never talk to each other. Not built yet:
//! see issue 6 and `../shared/spec/remoting.md` §11.
