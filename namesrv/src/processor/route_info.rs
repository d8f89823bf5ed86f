//! GET_ROUTEINFO_BY_TOPIC (105): a topic's route for clients and brokers (spec §11.3).

use ferromq_remoting::bodies::JsonBody;
use ferromq_remoting::headers::GetRouteInfoRequestHeader;
use ferromq_remoting::json::JsonStyle;
use ferromq_remoting::{RemotingCommand, ResponseCode};

use super::{Handled, NamesrvProcessor, response};
use crate::kv_config::NAMESPACE_ORDER_TOPIC_CONFIG;
use crate::route_info::filter_route_by_zone;

/// `MQVersion.Version.V4_9_4` ordinal: clients from this version on get standard JSON.
pub(crate) const VERSION_V4_9_4: i32 = 401;

/// extFields of clients that want routes of their own zone only (`MixAll.ZONE_MODE`,
/// `MixAll.ZONE_NAME`).
const ZONE_MODE_FIELD: &str = "__ZONE_MODE";
const ZONE_NAME_FIELD: &str = "__ZONE_NAME";

/// Java's hint appended to "topic not found" remarks (`FAQUrl.suggestTodo`).
const FAQ_SUFFIX: &str =
    "\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.";

pub(super) fn handle(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: GetRouteInfoRequestHeader = request.decode_header()?;
    let (support_acting_master, order_message_enable, wait_ms) = {
        let config = processor.config.read();
        let wait_ms = if config.need_wait_for_service {
            i64::from(config.wait_seconds_for_service) * 1000
        } else {
            0
        };
        (config.support_acting_master, config.order_message_enable, wait_ms)
    };
    if processor.now_ms() < wait_ms {
        tracing::warn!(topic = header.topic, "name server not ready yet");
        return Ok(response(
            request,
            ResponseCode::SYSTEM_ERROR,
            Some("name server not ready".to_owned()),
        ));
    }
    let route = processor.routes.read().pickup_topic_route(&header.topic, support_acting_master);
    let Some(mut route) = route else {
        let remark = format!(
            "No topic route info in name server for the topic: {}{FAQ_SUFFIX}",
            header.topic
        );
        return Ok(response(request, ResponseCode::TOPIC_NOT_EXIST, Some(remark)));
    };
    if order_message_enable {
        route.order_topic_conf = processor.kv.get(NAMESPACE_ORDER_TOPIC_CONFIG, &header.topic);
    }
    let zone_mode = request
        .ext_field(ZONE_MODE_FIELD)
        .is_some_and(|mode| mode.trim().eq_ignore_ascii_case("true"));
    let zone_name =
        request.ext_field(ZONE_NAME_FIELD).map(str::trim).filter(|zone| !zone.is_empty());
    if zone_mode && let Some(zone_name) = zone_name {
        filter_route_by_zone(&mut route, zone_name);
        // Java's hook re-encodes the filtered route in fastjson's default form, whatever the
        // request's version.
        return Ok(response(request, ResponseCode::SUCCESS, None).with_body(route.encode()));
    }
    let style =
        if request.version >= VERSION_V4_9_4 || header.accept_standard_json_only == Some(true) {
            JsonStyle::Standard
        } else {
            JsonStyle::Fastjson
        };
    Ok(response(request, ResponseCode::SUCCESS, None).with_body(route.encode_with(style)))
}
