//! WIPE_WRITE_PERM_OF_BROKER (205) and ADD_WRITE_PERM_OF_BROKER (327): an operator takes a
//! broker group out of (or back into) the write path; the answer counts its topics.

use ferromq_remoting::RemotingCommand;
use ferromq_remoting::headers::{
    AddWritePermOfBrokerRequestHeader, AddWritePermOfBrokerResponseHeader,
    WipeWritePermOfBrokerRequestHeader, WipeWritePermOfBrokerResponseHeader,
};

use super::{Handled, NamesrvProcessor, success};

pub(super) fn wipe(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: WipeWritePermOfBrokerRequestHeader = request.decode_header()?;
    let wipe_topic_count = processor.routes.write().wipe_write_perm(&header.broker_name);
    tracing::info!(broker_name = header.broker_name, wipe_topic_count, "write permission wiped");
    Ok(success(request).with_header(&WipeWritePermOfBrokerResponseHeader { wipe_topic_count }))
}

pub(super) fn add(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: AddWritePermOfBrokerRequestHeader = request.decode_header()?;
    let add_topic_count = processor.routes.write().add_write_perm(&header.broker_name);
    tracing::info!(broker_name = header.broker_name, add_topic_count, "write permission added");
    Ok(success(request).with_header(&AddWritePermOfBrokerResponseHeader { add_topic_count }))
}
