//! REGISTER_BROKER (103): a broker announces itself and its topics (spec §11.2).

use ferromq_message::hash::rocketmq_crc32;
use ferromq_remoting::bodies::{
    DataVersion, JsonBody, KvTable, RegisterBrokerBody, TopicConfigSerializeWrapper,
    VERSION_V3_0_11,
};
use ferromq_remoting::headers::{RegisterBrokerRequestHeader, RegisterBrokerResponseHeader};
use ferromq_remoting::transport::Connection;
use ferromq_remoting::{RemotingCommand, ResponseCode};

use super::{Handled, NamesrvProcessor, response};
use crate::kv_config::NAMESPACE_ORDER_TOPIC_CONFIG;
use crate::route_info::{BrokerRegistration, RegisterOutcome};

/// First byte of every zlib stream Java's `Deflater` writes (deflate, 32 KiB window).
const ZLIB_DEFLATE_32K_WINDOW: u8 = 0x78;

/// extField with the broker's zone (`MixAll.ZONE_NAME`).
const ZONE_NAME_FIELD: &str = "__ZONE_NAME";

pub(super) fn handle(
    processor: &NamesrvProcessor,
    connection: &Connection,
    request: &RemotingCommand,
) -> Handled {
    let header: RegisterBrokerRequestHeader = request.decode_header()?;
    let crc = header.body_crc32.unwrap_or(0);
    if crc != 0 && crc != rocketmq_crc32(&request.body) {
        tracing::warn!(peer = %connection.peer_addr(), broker = header.broker_name, "register broker: crc32 not match");
        return Ok(response(
            request,
            ResponseCode::SYSTEM_ERROR,
            Some("crc32 not match".to_owned()),
        ));
    }
    let (wrapper, filter_server_list) = decode_body(request, header.compressed.unwrap_or(false))?;
    let (delete_missing_topics, return_order_config) = {
        let config = processor.config.read();
        (config.delete_topic_with_broker_registration, config.return_order_topic_config_to_broker)
    };
    let registration = BrokerRegistration {
        cluster_name: header.cluster_name,
        broker_addr: header.broker_addr,
        broker_name: header.broker_name,
        broker_id: header.broker_id,
        ha_server_addr: header.ha_server_addr,
        zone_name: request.ext_field(ZONE_NAME_FIELD).map(str::to_owned),
        heartbeat_timeout_ms: header.heartbeat_timeout_millis,
        enable_acting_master: header.enable_acting_master,
        topic_config_wrapper: wrapper,
        filter_server_list,
        connection_id: Some(connection.id()),
    };
    let now_ms = processor.now_ms();
    let outcome =
        processor.routes.write().register_broker(registration, delete_missing_topics, now_ms);
    if connection.is_closed() {
        // The connection closed while we registered: its close already ran, so undo here.
        processor.routes.write().on_connection_closed(connection.id());
    }
    let result = match outcome {
        RegisterOutcome::Registered(result) => result,
        RegisterOutcome::Rejected => {
            return Ok(response(
                request,
                ResponseCode::SYSTEM_ERROR,
                Some("register broker failed".to_owned()),
            ));
        }
    };
    let response_header = RegisterBrokerResponseHeader {
        ha_server_addr: result.ha_server_addr,
        master_addr: result.master_addr,
    };
    let mut answer = response(request, ResponseCode::SUCCESS, None).with_header(&response_header);
    if return_order_config && let Some(table) = processor.kv.namespace(NAMESPACE_ORDER_TOPIC_CONFIG)
    {
        answer = answer.with_body(KvTable { table }.encode());
    }
    Ok(answer)
}

/// The topic table and filter servers of a registration, in whichever form the broker's
/// version and the `compressed` flag say. Brokers older than V3_0_11 send a bare
/// `TopicConfigSerializeWrapper` (and no filter servers); an empty body is an empty table
/// with a zeroed DataVersion.
fn decode_body(
    request: &RemotingCommand,
    compressed: bool,
) -> ferromq_remoting::Result<(TopicConfigSerializeWrapper, Option<Vec<String>>)> {
    let old_version = request.version < VERSION_V3_0_11;
    if request.body.is_empty() {
        let wrapper = TopicConfigSerializeWrapper {
            data_version: DataVersion { counter: 0, state_version: 0, timestamp: 0 },
            ..TopicConfigSerializeWrapper::default()
        };
        return Ok((wrapper, (!old_version).then(Vec::new)));
    }
    if old_version {
        return Ok((TopicConfigSerializeWrapper::decode(&request.body)?, None));
    }
    // A 5.x broker with `compressedRegister=true` deflates the body but always sends
    // `compressed=false` (a Java name server then fails to parse it). A zlib stream starts
    // with 0x78 and JSON never does, so such a body is recognised and inflated.
    let body = if compressed || request.body.first() == Some(&ZLIB_DEFLATE_32K_WINDOW) {
        RegisterBrokerBody::decode_compressed(&request.body, request.version)?
    } else {
        RegisterBrokerBody::decode(&request.body)?
    };
    Ok((body.topic_config_serialize_wrapper, Some(body.filter_server_list)))
}
