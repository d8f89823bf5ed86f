//! UNREGISTER_BROKER (104): a broker shutting down removes itself (spec §11.4).

use ferromq_remoting::RemotingCommand;
use ferromq_remoting::headers::UnregisterBrokerRequestHeader;

use super::{Handled, NamesrvProcessor, success};
use crate::route_info::BrokerIdentity;

pub(super) fn handle(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: UnregisterBrokerRequestHeader = request.decode_header()?;
    processor.routes.write().unregister_brokers(&[BrokerIdentity {
        cluster_name: header.cluster_name,
        broker_addr: header.broker_addr,
        broker_name: header.broker_name,
        broker_id: header.broker_id,
    }]);
    Ok(success(request))
}
