//! BROKER_HEARTBEAT (904, 5.x): refreshes a broker's liveness (spec §11.4).

use ferromq_remoting::RemotingCommand;
use ferromq_remoting::headers::BrokerHeartbeatRequestHeader;

use super::{Handled, NamesrvProcessor, success};
use crate::route_info::BrokerAddrInfo;

pub(super) fn handle(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: BrokerHeartbeatRequestHeader = request.decode_header()?;
    let now_ms = processor.now_ms();
    let addr_info = BrokerAddrInfo::new(&header.cluster_name, &header.broker_addr);
    processor.routes.write().update_broker_timestamp(&addr_info, now_ms);
    Ok(success(request))
}
