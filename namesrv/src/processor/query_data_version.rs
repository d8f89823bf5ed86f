//! QUERY_DATA_VERSION (322): has the broker's topic table changed since it last registered?
//! Also refreshes the broker's liveness, so it doubles as a heartbeat (spec §11.4).

use ferromq_remoting::bodies::{DataVersion, JsonBody};
use ferromq_remoting::headers::{QueryDataVersionRequestHeader, QueryDataVersionResponseHeader};
use ferromq_remoting::{RemotingCommand, ResponseCode};

use super::{Handled, NamesrvProcessor, response};
use crate::route_info::BrokerAddrInfo;

pub(super) fn handle(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: QueryDataVersionRequestHeader = request.decode_header()?;
    let asked =
        if request.body.is_empty() { None } else { Some(DataVersion::decode(&request.body)?) };
    let addr_info = BrokerAddrInfo::new(&header.cluster_name, &header.broker_addr);
    let now_ms = processor.now_ms();
    let (changed, stored) = {
        let mut routes = processor.routes.write();
        let changed = routes.is_broker_topic_config_changed(&addr_info, asked.as_ref());
        routes.update_broker_timestamp(&addr_info, now_ms);
        (changed, routes.broker_data_version(&addr_info))
    };
    let mut answer = response(request, ResponseCode::SUCCESS, None)
        .with_header(&QueryDataVersionResponseHeader { changed });
    if let Some(stored) = stored {
        answer = answer.with_body(stored.encode());
    }
    Ok(answer)
}
