//! The async request processor: one transport [`Handler`] that decodes each request, runs
//! it against the [`RouteInfoManager`], the KV store or the config, and encodes the answer.
//!
//! One file per request code (or per family of codes sharing a header). Every handler returns
//! the response, or a decoding error that becomes SYSTEM_ERROR with the error as remark (what
//! Java does with a `RemotingCommandException`); the connection stays open. Locks are
//! `parking_lot` ones and never held across an `.await`; file writes run on blocking threads.

mod broker_heartbeat;
mod broker_member_group;
mod cluster_info;
mod delete_topic;
mod kv_config;
mod namesrv_config;
mod query_data_version;
mod register_broker;
mod register_topic;
mod route_info;
mod topic_list;
mod unregister_broker;
mod write_perm;

use std::collections::HashMap;
use std::sync::Arc;

use ferromq_remoting::transport::{Connection, Handler, Reply};
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use crate::config::NamesrvConfig;
use crate::kv_config::KvConfigManager;
use crate::route_info::{ExpiredBroker, RouteInfoManager};

/// A handler's result: the response, or a request that could not be decoded.
type Handled = ferromq_remoting::Result<RemotingCommand>;

/// The name server's state and request handler. Shared by every connection and by the
/// expiry scan.
#[derive(Debug)]
pub(crate) struct NamesrvProcessor {
    pub(crate) routes: RwLock<RouteInfoManager>,
    pub(crate) kv: Arc<KvConfigManager>,
    pub(crate) config: RwLock<NamesrvConfig>,
    /// Start of the monotonic clock the route manager's `now_ms` counts from.
    started: Instant,
    /// Connections that registered a broker, so that an expired broker's connection can be
    /// closed (as Java closes the channel). Entries leave when the connection closes.
    broker_connections: Mutex<HashMap<u64, Connection>>,
}

impl NamesrvProcessor {
    pub(crate) fn new(config: NamesrvConfig, kv: KvConfigManager) -> Self {
        Self {
            routes: RwLock::new(RouteInfoManager::default()),
            kv: Arc::new(kv),
            config: RwLock::new(config),
            started: Instant::now(),
            broker_connections: Mutex::new(HashMap::new()),
        }
    }

    /// Milliseconds since this name server started (tokio's clock, so tests can pause it).
    pub(crate) fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs one expiry scan: drops silent brokers and closes their connections.
    pub(crate) fn scan_not_active_brokers(&self) -> Vec<ExpiredBroker> {
        let now_ms = self.now_ms();
        let expired = self.routes.write().scan_not_active_brokers(now_ms);
        let connections = self.broker_connections.lock();
        for broker in &expired {
            if let Some(connection) = broker.connection_id.and_then(|id| connections.get(&id)) {
                connection.close();
            }
        }
        expired
    }

    fn remember_broker_connection(&self, connection: &Connection) {
        self.broker_connections.lock().entry(connection.id()).or_insert_with(|| connection.clone());
    }

    async fn process(&self, connection: &Connection, request: &RemotingCommand) -> RemotingCommand {
        use RequestCode as Code;
        let handled = match RequestCode(request.code) {
            Code::PUT_KV_CONFIG => kv_config::put(self, request).await,
            Code::GET_KV_CONFIG => kv_config::get(self, request),
            Code::DELETE_KV_CONFIG => kv_config::delete(self, request).await,
            Code::GET_KVLIST_BY_NAMESPACE => kv_config::list_namespace(self, request),
            Code::REGISTER_BROKER => {
                self.remember_broker_connection(connection);
                register_broker::handle(self, connection, request)
            }
            Code::UNREGISTER_BROKER => unregister_broker::handle(self, request),
            Code::QUERY_DATA_VERSION => query_data_version::handle(self, request),
            Code::BROKER_HEARTBEAT => broker_heartbeat::handle(self, request),
            Code::GET_ROUTEINFO_BY_TOPIC => route_info::handle(self, request),
            Code::GET_BROKER_CLUSTER_INFO => cluster_info::handle(self, request),
            Code::GET_BROKER_MEMBER_GROUP => broker_member_group::handle(self, request),
            Code::WIPE_WRITE_PERM_OF_BROKER => write_perm::wipe(self, request),
            Code::ADD_WRITE_PERM_OF_BROKER => write_perm::add(self, request),
            Code::DELETE_TOPIC_IN_NAMESRV => delete_topic::handle(self, request),
            Code::REGISTER_TOPIC_IN_NAMESRV => register_topic::handle(self, request),
            Code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => topic_list::all(self, request),
            Code::GET_TOPICS_BY_CLUSTER => topic_list::by_cluster(self, request),
            Code::GET_SYSTEM_TOPIC_LIST_FROM_NS => topic_list::system(self, request),
            Code::GET_UNIT_TOPIC_LIST => topic_list::unit(self, request),
            Code::GET_HAS_UNIT_SUB_TOPIC_LIST => topic_list::has_unit_sub(self, request),
            Code::GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST => {
                topic_list::has_unit_sub_ununit(self, request)
            }
            Code::UPDATE_NAMESRV_CONFIG => namesrv_config::update(self, request).await,
            Code::GET_NAMESRV_CONFIG => namesrv_config::get(self, request),
            _ => return Reply::code_not_supported(request).command,
        };
        handled.unwrap_or_else(|error| {
            tracing::warn!(
                peer = %connection.peer_addr(),
                code = %RequestCode(request.code),
                %error,
                "bad request answered with SYSTEM_ERROR"
            );
            response(request, ResponseCode::SYSTEM_ERROR, Some(error.to_string()))
        })
    }
}

impl Handler for NamesrvProcessor {
    async fn handle(&self, connection: Connection, request: RemotingCommand) -> Option<Reply> {
        Some(Reply::new(self.process(&connection, &request).await))
    }

    fn on_close(&self, connection: &Connection) {
        let was_broker = self.broker_connections.lock().remove(&connection.id()).is_some();
        if was_broker {
            let removed = self.routes.write().on_connection_closed(connection.id());
            tracing::info!(
                peer = %connection.peer_addr(),
                brokers = removed.len(),
                "broker connection closed; its brokers are unregistered"
            );
        }
    }
}

/// A response with the given code and remark.
fn response(
    request: &RemotingCommand,
    code: ResponseCode,
    remark: Option<String>,
) -> RemotingCommand {
    RemotingCommand::response_to(request, code.code(), remark)
}

/// SUCCESS without remark.
fn success(request: &RemotingCommand) -> RemotingCommand {
    response(request, ResponseCode::SUCCESS, None)
}

/// SYSTEM_ERROR with Java's `disable` remark, for a list the config turns off.
fn disabled(request: &RemotingCommand) -> RemotingCommand {
    response(request, ResponseCode::SYSTEM_ERROR, Some("disable".to_owned()))
}
