//! The ferromq name server: the stateless route registry of a RocketMQ cluster.
//!
//! Brokers register their topics with every name server (REGISTER_BROKER every 30 s);
//! producers, consumers and `mqadmin` ask any one of them for routes, cluster info and
//! topic lists. Name servers never talk to each other: each one's state is rebuilt from the
//! brokers' registrations, and only the KV config (order-topic settings and the like) is
//! kept on disk. The wire protocol is RocketMQ's (`shared/spec/remoting.md` §11), so Java,
//! Go, C++ and Node clients and Java brokers work against it unmodified.
//!
//! What it is not: it keeps no replica of anything, elects nothing (no embedded
//! controller), and forwards nothing to other name servers.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use ferromq_namesrv::{NamesrvConfig, run};
//!
//! let config = NamesrvConfig { listen_port: 9876, ..NamesrvConfig::default() };
//! let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.listen_port)).await?;
//! run(listener, config, async { drop(tokio::signal::ctrl_c().await) }).await
//! # }
//! ```
//!
//! Map of the crate:
//! - `config`: [`NamesrvConfig`] under `namesrv.properties` keys, and its loader.
//! - `properties`: Java `.properties` text, read and written.
//! - `route_info`: the pure, synchronous `RouteInfoManager` (all routing state, explicit
//!   time).
//! - `kv_config`: the KV store and its `kvConfig.json`.
//! - `atomic_file`: crash-safe replacement of small files.
//! - `processor`: the transport `Handler`, one file per request code.
//! - `server`: [`run`] — state, expiry scan, transport.

mod atomic_file;
mod config;
mod error;
mod kv_config;
mod processor;
pub mod properties;
mod route_info;
mod server;

pub use config::NamesrvConfig;
pub use error::{Error, Result};
pub use server::run;
