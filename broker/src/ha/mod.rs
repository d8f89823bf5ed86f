//! Master/slave high availability: RocketMQ's classic HA (remoting.md §12–§13, broker.md
//! §11–§12), byte-compatible with Java brokers on both sides.
//!
//! A broker group shares `brokerName`; `brokerId` 0 is the master, the others are slaves.
//! A slave learns its master from the name server's registration result (or from
//! `haMasterAddress`), connects to the master's `haListenPort`, reports its CommitLog end,
//! and appends the raw CommitLog bytes the master streams back; its own store dispatches
//! ConsumeQueues and IndexFiles from them, so its files are the master's byte for byte. It
//! copies topics, consumer offsets, delay offsets and subscription groups every 10 s
//! ([`sync`]), serves pulls and queries, and refuses writes.
//!
//! What each role guarantees for an acknowledged send (SUCCESS):
//! - `ASYNC_MASTER`: the message is in the master's store (flushed too under SYNC_FLUSH);
//!   slaves get it within milliseconds but without a promise: if the master's disk is lost
//!   before that, so is the message.
//! - `SYNC_MASTER` (Java 4.9 behaviour): SUCCESS only once a slave reported a CommitLog end
//!   covering the message, i.e. it is in the memory of two processes on two machines (and
//!   on the slave's disk when the slave flushes synchronously). With no slave connected, or
//!   the best one more than `haSlaveFallbehindMax` behind, the answer is SLAVE_NOT_AVAILABLE
//!   at once; without an acknowledgement within `slaveTimeout`, FLUSH_SLAVE_TIMEOUT. In both
//!   cases the message is stored on the master (Java producers treat them as sent, not as
//!   failures) but not known to be on a slave. Messages sent with `WAIT=false` never wait.
//!
//! Modules: [`protocol`] (the bytes), `master` (listener, per-slave reader and writer
//! threads, the SYNC_MASTER wait), `slave` (the HA client session), `check` (is this
//! slave's log a prefix of its master's?), [`truncate`] (cutting it when not), [`sync`]
//! (metadata).

mod check;
mod master;
pub mod protocol;
mod slave;
pub mod sync;
pub mod truncate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferromq_remoting::ResponseCode;
use ferromq_store::PutResult;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use master::{SlaveAck, SlaveInfo};
pub use sync::{SyncReport, sync_metadata};

use crate::broker::Broker;
use crate::config::{BrokerConfig, BrokerRole};
use master::{MasterSettings, MasterState};
use slave::{SessionEnd, SlaveSettings, SlaveState};

/// A slave without a known master asks the name server this often.
pub const MASTER_DISCOVERY_PERIOD: Duration = Duration::from_secs(2);

/// The HA state of one broker, in [`Broker::ha`].
#[derive(Debug)]
pub struct Ha {
    role: BrokerRole,
    pub(crate) master: Arc<MasterState>,
    pub(crate) slave: Arc<SlaveState>,
    pub(crate) sync: sync::SyncState,
    restart: Arc<AtomicBool>,
    restart_notify: Notify,
    /// The settings an UPDATE_BROKER_CONFIG asked the broker to reopen with
    /// (`crate::config_update`); held while an update reads, checks and persists them.
    pub(crate) reopen_config: Arc<Mutex<Option<BrokerConfig>>>,
    listener: Mutex<Option<std::net::TcpListener>>,
    ha_addr: Mutex<Option<SocketAddr>>,
}

impl Ha {
    /// The state of a broker with this configuration; nothing runs until [`start`].
    pub fn new(config: &BrokerConfig) -> Self {
        Self {
            role: config.broker_role,
            master: Arc::new(MasterState::default()),
            slave: Arc::new(SlaveState::new(config.ha_master_address.clone())),
            sync: sync::SyncState::default(),
            restart: Arc::new(AtomicBool::new(false)),
            restart_notify: Notify::new(),
            reopen_config: Arc::new(Mutex::new(None)),
            listener: Mutex::new(None),
            ha_addr: Mutex::new(None),
        }
    }

    /// Tells the HA writers that the CommitLog grew.
    pub fn notify_new_data(&self) {
        self.master.data.ring();
    }

    /// What the store's arrival hook rings when the CommitLog grew.
    pub fn data_signal(&self) -> DataSignalHandle {
        DataSignalHandle(self.master.clone())
    }

    /// Makes a master serve HA on `listener` instead of binding `0.0.0.0:haListenPort`
    /// (tests bind `127.0.0.1:0`).
    pub fn use_listener(&self, listener: std::net::TcpListener) {
        *self.listener.lock() = Some(listener);
    }

    /// The address a master's HA listener is bound to, once started.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        *self.ha_addr.lock()
    }

    /// The slaves connected to this master.
    pub fn slaves(&self) -> Vec<SlaveInfo> {
        self.master.slaves()
    }

    /// A slave's master (remoting address), from the last registration result.
    pub fn master_addr(&self) -> Option<String> {
        self.slave.master_addr()
    }

    /// A slave's master HA address: `haMasterAddress`, or the one the name server gave.
    pub fn master_ha_addr(&self) -> Option<String> {
        self.slave.ha_addr()
    }

    /// A slave's last offset report to its master (`None` while not connected).
    pub fn reported_offset(&self) -> Option<i64> {
        Some(self.slave.reported.load(Ordering::Acquire)).filter(|offset| *offset >= 0)
    }

    /// Applies a REGISTER_BROKER result's `masterAddr` and `haServerAddr` (slaves only).
    pub fn on_register_result(&self, master_addr: Option<String>, ha_server_addr: Option<String>) {
        if self.role == BrokerRole::Slave {
            self.slave.on_register_result(master_addr, ha_server_addr);
        }
    }

    /// Whether this is a slave that does not know its master yet (it then registers every
    /// [`MASTER_DISCOVERY_PERIOD`] instead of every `registerNameServerPeriod`).
    pub fn wants_master(&self) -> bool {
        self.role == BrokerRole::Slave && self.slave.master_addr().is_none()
    }

    /// Set when the broker must restart (a slave whose CommitLog must be cut before it can
    /// follow its master, or new settings from UPDATE_BROKER_CONFIG): `run` returns, and
    /// whoever runs the broker opens it again — with [`RestartHandle::next_config`], which
    /// also carries the new settings.
    pub fn restart_flag(&self) -> Arc<AtomicBool> {
        self.restart.clone()
    }

    /// What the runner of this broker keeps across `run` to learn whether, and with which
    /// settings, to open the broker again.
    pub fn restart_handle(&self) -> RestartHandle {
        RestartHandle { wanted: self.restart.clone(), reopen_config: self.reopen_config.clone() }
    }

    /// The settings an accepted UPDATE_BROKER_CONFIG will reopen the broker with, while
    /// that reopening is pending.
    pub fn pending_config(&self) -> Option<BrokerConfig> {
        self.reopen_config.lock().clone()
    }

    /// Resolves once a restart was asked for.
    pub async fn restart_wanted(&self) {
        let notified = self.restart_notify.notified();
        if self.restart.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    pub(crate) fn request_restart(&self) {
        self.restart.store(true, Ordering::Release);
        self.restart_notify.notify_waiters();
    }
}

/// Whether a broker asked to be opened again once `run` returned, and with which settings
/// ([`Ha::restart_handle`]).
#[derive(Debug, Clone)]
pub struct RestartHandle {
    wanted: Arc<AtomicBool>,
    reopen_config: Arc<Mutex<Option<BrokerConfig>>>,
}

impl RestartHandle {
    /// Whether the broker asked to be opened again.
    pub fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Acquire)
    }

    /// `None` when no restart was asked for; otherwise the settings to open the broker
    /// with: those of an accepted UPDATE_BROKER_CONFIG, or else `current` (a slave's cut
    /// keeps its settings).
    pub fn next_config(&self, current: &BrokerConfig) -> Option<BrokerConfig> {
        if !self.wanted() {
            return None;
        }
        Some(self.reopen_config.lock().clone().unwrap_or_else(|| current.clone()))
    }
}

/// Rings the HA writers of a master (held by the store's arrival hook).
#[derive(Debug, Clone)]
pub struct DataSignalHandle(Arc<MasterState>);

impl DataSignalHandle {
    /// The CommitLog grew.
    pub fn ring(&self) {
        self.0.data.ring();
    }
}

/// SYNC_MASTER: the response code of a stored put once a slave has it (or not). Other roles,
/// failed puts and `WAIT=false` messages keep `code`.
pub async fn replication_code(
    broker: &Broker,
    result: &PutResult,
    code: ResponseCode,
    wait: bool,
) -> ResponseCode {
    if broker.config.broker_role != BrokerRole::SyncMaster || !wait || !result.status.is_ok() {
        return code;
    }
    let end = result.phy_offset + i64::from(result.wrote_bytes);
    let config = &broker.config;
    match broker
        .ha
        .master
        .wait_for_slave(end, config.ha_slave_fallbehind_max, config.slave_timeout)
        .await
    {
        SlaveAck::Acked => code,
        SlaveAck::NotAvailable => ResponseCode::SLAVE_NOT_AVAILABLE,
        SlaveAck::Timeout => ResponseCode::FLUSH_SLAVE_TIMEOUT,
    }
}

/// The HA services of a running broker; [`Running::stop`] ends them.
#[derive(Debug)]
pub struct Running {
    stop: Arc<AtomicBool>,
    stopping: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
    master: Arc<MasterState>,
}

impl Running {
    /// Stops accepting, closes every HA connection, and waits for the threads and tasks.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.stopping.send_replace(true);
        self.master.close_all();
        self.master.data.ring();
        for task in self.tasks {
            let _ = task.await;
        }
        // A slave accepted just before the accept loop stopped is closed here.
        self.master.close_all();
        let threads = std::mem::take(&mut *self.threads.lock());
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                if thread.join().is_err() {
                    tracing::error!("an HA thread panicked");
                }
            }
        });
        let _ = joined.await;
    }
}

/// Starts the services of the broker's role: a master's HA listener, or a slave's HA
/// client and metadata sync.
pub async fn start(broker: &Arc<Broker>) -> Running {
    let (stopping, _) = watch::channel(false);
    let mut running = Running {
        stop: Arc::new(AtomicBool::new(false)),
        stopping,
        tasks: Vec::new(),
        threads: Arc::new(Mutex::new(Vec::new())),
        master: broker.ha.master.clone(),
    };
    if broker.config.is_master() {
        match bind(broker) {
            Ok(listener) => {
                let addr = listener.local_addr().ok();
                *broker.ha.ha_addr.lock() = addr;
                tracing::info!(addr = ?addr, "HA listener serving slaves");
                running.tasks.push(tokio::spawn(accept_loop(
                    broker.clone(),
                    listener,
                    running.stopping.subscribe(),
                    running.threads.clone(),
                )));
            }
            Err(error) => {
                let addr = broker.config.ha_server_addr();
                tracing::error!(%addr, %error, "cannot listen for HA slaves; none can connect");
            }
        }
    } else {
        running.tasks.push(tokio::spawn(supervise(
            broker.clone(),
            running.stopping.subscribe(),
            running.stop.clone(),
        )));
        running.tasks.push(tokio::spawn(sync_loop(broker.clone(), running.stopping.subscribe())));
    }
    running
}

fn bind(broker: &Broker) -> std::io::Result<tokio::net::TcpListener> {
    let listener = match broker.ha.listener.lock().take() {
        Some(listener) => listener,
        None => std::net::TcpListener::bind(("0.0.0.0", broker.config.ha_server_addr().port()))?,
    };
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

fn master_settings(config: &BrokerConfig) -> MasterSettings {
    MasterSettings {
        batch_size: config.ha_transfer_batch_size.max(1),
        heartbeat: config.ha_send_heartbeat_interval,
        housekeeping: config.ha_housekeeping_interval,
        segment_size: i64::try_from(config.store.mapped_file_size_commit_log).unwrap_or(i64::MAX),
    }
}

async fn accept_loop(
    broker: Arc<Broker>,
    listener: tokio::net::TcpListener,
    mut stopping: watch::Receiver<bool>,
    threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
) {
    let settings = master_settings(&broker.config);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "HA accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if broker.ha.master.connection_count() >= master::SLAVE_CONNECTIONS_MAX {
            tracing::warn!(slave = %peer, max = master::SLAVE_CONNECTIONS_MAX,
                "too many HA connections; closing this one");
            continue;
        }
        let served = socket.into_std().and_then(|socket| {
            master::serve_connection(
                socket,
                peer,
                &broker.ha.master,
                &broker.store,
                settings,
                &threads,
            )
        });
        if let Err(error) = served {
            tracing::warn!(slave = %peer, %error, "cannot serve an HA slave");
        }
    }
}

/// The slave's loop: wait for a master, check that this CommitLog agrees with it (asking
/// for a restart that cuts it when not), run a session, wait `haSendHeartbeatInterval`, and
/// again.
async fn supervise(
    broker: Arc<Broker>,
    mut stopping: watch::Receiver<bool>,
    stop: Arc<AtomicBool>,
) {
    let state = broker.ha.slave.clone();
    let settings = SlaveSettings {
        heartbeat: broker.config.ha_send_heartbeat_interval,
        housekeeping: broker.config.ha_housekeeping_interval,
    };
    let reconnect_wait = settings.heartbeat;
    loop {
        if *stopping.borrow() {
            return;
        }
        let Some(ha_addr) = state.ha_addr() else {
            let changed = state.changed.notified();
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            continue;
        };
        match agree_with_master(&broker).await {
            Agreement::Agreed => {}
            Agreement::CutRequested => {
                broker.ha.request_restart();
                return;
            }
            Agreement::Unknown(reason) => {
                tracing::warn!(
                    reason,
                    "cannot check the commit log against the master's; retrying"
                );
                if pause(&mut stopping, reconnect_wait).await {
                    return;
                }
                continue;
            }
        }
        let session = {
            let (store, hold, state, stop, addr) = (
                broker.store.clone(),
                broker.hold.clone(),
                state.clone(),
                stop.clone(),
                ha_addr.clone(),
            );
            tokio::task::spawn_blocking(move || {
                slave::run_session(&addr, &store, &hold, &state, settings, &stop)
            })
        };
        let end = match session.await {
            Ok(end) => end,
            Err(error) => SessionEnd::Disconnected(format!("HA session task failed: {error}")),
        };
        match end {
            SessionEnd::Stopped => return,
            SessionEnd::OffsetMismatch { master, slave } => {
                tracing::warn!(
                    master,
                    slave,
                    "the master streams from another offset than this slave's end"
                );
            }
            SessionEnd::Disconnected(reason) => {
                tracing::info!(master = ha_addr, reason, "HA session ended");
            }
            SessionEnd::StoreError(reason) => {
                tracing::error!(master = ha_addr, reason, "the store refused the master's data");
            }
        }
        if pause(&mut stopping, reconnect_wait).await {
            return;
        }
    }
}

/// Sleeps `wait`; true when the broker is stopping.
async fn pause(stopping: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    let slept = tokio::select! {
        () = tokio::time::sleep(wait) => true,
        _ = stopping.wait_for(|stop| *stop) => false,
    };
    !slept || *stopping.borrow()
}

enum Agreement {
    Agreed,
    CutRequested,
    Unknown(String),
}

/// Compares this slave's CommitLog with its master's; records a cut when they disagree.
async fn agree_with_master(broker: &Arc<Broker>) -> Agreement {
    let Some(master) = broker.ha.slave.master_addr() else {
        // Without the name server's answer (a static `haMasterAddress`) there is nobody to
        // ask: stream as RocketMQ does, trusting the log.
        return Agreement::Agreed;
    };
    let agreed = match check::agreed_end(broker, &master).await {
        Ok(agreed) => agreed,
        Err(error) => return Agreement::Unknown(error.to_string()),
    };
    let end = broker.store.max_phy_offset();
    if agreed >= end {
        return Agreement::Agreed;
    }
    let config = broker.config.clone();
    let recorded =
        tokio::task::spawn_blocking(move || truncate::request_cut(&config, agreed)).await;
    match recorded {
        Ok(Ok(())) => {
            tracing::warn!(end, cut = agreed, %master,
                "this slave holds data its master lacks: restarting to cut the commit log");
            Agreement::CutRequested
        }
        Ok(Err(error)) => Agreement::Unknown(format!("cannot record the cut: {error}")),
        Err(error) => Agreement::Unknown(format!("cannot record the cut: {error}")),
    }
}

/// The slave's metadata sync: soon after start (3 s, as Java 4.9), when the master
/// changes, and every 10 s.
async fn sync_loop(broker: Arc<Broker>, mut stopping: watch::Receiver<bool>) {
    let mut wait = Duration::from_secs(3);
    loop {
        let changed = broker.ha.slave.changed.notified();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = changed => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        wait = sync::SYNC_PERIOD;
        if let Some(master) = broker.ha.slave.master_addr() {
            let report = sync_metadata(&broker, &master).await;
            tracing::debug!(?report, %master, "metadata synced from the master");
        }
    }
}
