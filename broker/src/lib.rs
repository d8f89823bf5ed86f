//! The ferromq broker: RocketMQ's remoting processors in front of the embeddable store.
//!
//! A thin async shell (`shared/spec/broker.md`): requests arrive through the remoting
//! transport, are checked and routed by [`broker::BrokerHandler`], and end as calls into
//! [`ferromq_store::MessageStore`]. Blocking store work runs off the runtime's workers
//! (puts under sync flush, reads that may fault pages in); pull responses are written from
//! the store's mapped segments without copying message bytes.
//!
//! Map of the crate:
//! - [`config`]: `broker.conf` keys, Java properties syntax; [`config_update`]: changing
//!   them at run time (UPDATE_BROKER_CONFIG), the admin-command master switch included.
//! - [`broker`]: shared state and request routing.
//! - [`send`], [`pull`], [`consumer`], [`admin`]: processors by request family.
//! - [`hold`]: long polling; [`filter`]: tag filtering.
//! - [`metadata`], [`persist`]: topics, groups, offsets and their JSON files.
//! - [`clients`]: producers, consumers, queue locks.
//! - [`register`]: name-server registration; [`schedule`]: delayed delivery.
//! - [`ha`]: master/slave replication, SYNC_MASTER acknowledgements, slave metadata sync.

pub mod admin;
pub mod broker;
pub mod clients;
pub mod config;
pub mod config_update;
pub mod consumer;
pub mod filter;
pub mod ha;
pub mod hold;
pub mod metadata;
pub mod persist;
pub mod pull;
pub mod register;
pub mod schedule;
pub mod send;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferromq_remoting::transport::{TransportConfig, serve};
use tokio::net::TcpListener;

pub use broker::{Broker, BrokerHandler, StartError};
pub use config::{BrokerConfig, BrokerRole, ConfigError};

/// Serves `listener` with an opened broker until `shutdown` resolves — or until the broker
/// asks to be opened again: a slave must cut its CommitLog to follow its master, or an
/// UPDATE_BROKER_CONFIG changed its settings (keep `broker.ha.restart_handle()` before the
/// call; its `next_config` then gives the settings to open the broker with, as `main`
/// does) — then drains connections (requests in flight are answered), unregisters from the
/// name servers (not when it is about to reopen under the same name and address: it
/// registers again at once), persists offsets and closes the store (removing its abort file).
/// `fast_listener`, if given, is the "fast"/VIP port (`listenPort − 2`) that serves
/// everything but pulls.
///
/// # Errors
///
/// The store fails to close cleanly.
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ferromq_store::Error> {
    run_with_fast_port(broker, listener, None, shutdown).await
}

/// [`run`] with an optional fast port.
///
/// # Errors
///
/// As [`run`].
pub async fn run_with_fast_port(
    broker: Arc<Broker>,
    listener: TcpListener,
    fast_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ferromq_store::Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let restart = broker.ha.restart_handle();
    let schedule = if broker.config.is_master() {
        match schedule::start(broker.clone(), stop.clone()) {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::error!(%error, "cannot start the delayed-delivery thread");
                None
            }
        }
    } else {
        None
    };
    let ha = ha::start(&broker).await;
    let housekeeping = tokio::spawn(broker.clone().housekeeping());
    let registration = tokio::spawn(register::registration_loop(broker.clone()));
    tracing::info!(
        addr = %broker.config.broker_addr(),
        name = %broker.config.broker_name,
        cluster = %broker.config.broker_cluster_name,
        "broker serving"
    );
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let fast = fast_listener.map(|listener| {
        let handler = Arc::new(BrokerHandler { broker: broker.clone(), fast_port: true });
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            serve(listener, handler, TransportConfig::default(), async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await
        })
    });
    let handler = Arc::new(BrokerHandler { broker: broker.clone(), fast_port: false });
    let hold = broker.hold.clone();
    serve(listener, handler, TransportConfig::default(), async {
        // A slave that must cut its CommitLog stops too, to be opened again (crate::ha).
        tokio::select! {
            () = shutdown => {}
            () = broker.ha.restart_wanted() => {}
        }
        // Held pulls are answered now rather than at their long-poll timeout.
        hold.close();
        stopping.send_replace(true);
    })
    .await;
    if let Some(fast) = fast {
        let _ = fast.await;
    }
    drop(stopped);
    registration.abort();
    housekeeping.abort();
    let _ = registration.await;
    let _ = housekeeping.await;
    ha.stop().await;
    // Reopening under the same name and address, the broker registers again at once (under
    // its new id after a switch); unregistering first would only empty its route meanwhile,
    // and a name server that unregisters by id could drop the entry another broker of the
    // group has just taken.
    let reopens_alike = restart
        .next_config(&broker.config)
        .is_some_and(|next| same_registration(&broker.config, &next));
    if !reopens_alike {
        register::unregister_all(&broker).await;
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(schedule) = schedule
        && schedule.join().is_err()
    {
        tracing::error!("delayed-delivery thread panicked");
    }
    broker.persist_offsets().await;
    broker.outbound.close_all();
    // Every task holding the broker is gone; the store closes once the last reference drops.
    let store = match Arc::try_unwrap(broker) {
        Ok(broker) => broker.store,
        Err(broker) => {
            tracing::warn!("broker still referenced at shutdown; flushing the store");
            return broker.store.flush();
        }
    };
    match Arc::try_unwrap(store) {
        Ok(store) => store.close(),
        Err(store) => store.flush(),
    }
}

/// Whether two settings register the same broker entry (cluster, group, address).
fn same_registration(old: &BrokerConfig, new: &BrokerConfig) -> bool {
    old.broker_cluster_name == new.broker_cluster_name
        && old.broker_name == new.broker_name
        && old.broker_addr() == new.broker_addr()
}
