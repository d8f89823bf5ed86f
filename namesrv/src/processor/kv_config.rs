//! KV config: PUT_KV_CONFIG (100), GET_KV_CONFIG (101), DELETE_KV_CONFIG (102),
//! GET_KVLIST_BY_NAMESPACE (219) (spec §11.5). A change is answered once it is on disk.

use ferromq_remoting::bodies::{JsonBody, KvTable};
use ferromq_remoting::headers::{
    DeleteKvConfigRequestHeader, GetKvConfigRequestHeader, GetKvConfigResponseHeader,
    GetKvListByNamespaceRequestHeader, PutKvConfigRequestHeader,
};
use ferromq_remoting::{RemotingCommand, ResponseCode};

use super::{Handled, NamesrvProcessor, response, success};

pub(super) async fn put(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: PutKvConfigRequestHeader = request.decode_header()?;
    processor.kv.put(&header.namespace, &header.key, &header.value);
    Ok(persisted(processor, request).await)
}

pub(super) fn get(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: GetKvConfigRequestHeader = request.decode_header()?;
    match processor.kv.get(&header.namespace, &header.key) {
        Some(value) => {
            Ok(success(request).with_header(&GetKvConfigResponseHeader { value: Some(value) }))
        }
        None => {
            let remark =
                format!("No config item, Namespace: {} Key: {}", header.namespace, header.key);
            Ok(response(request, ResponseCode::QUERY_NOT_FOUND, Some(remark))
                .with_header(&GetKvConfigResponseHeader { value: None }))
        }
    }
}

pub(super) async fn delete(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: DeleteKvConfigRequestHeader = request.decode_header()?;
    processor.kv.delete(&header.namespace, &header.key);
    Ok(persisted(processor, request).await)
}

pub(super) fn list_namespace(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: GetKvListByNamespaceRequestHeader = request.decode_header()?;
    match processor.kv.namespace(&header.namespace) {
        Some(table) => Ok(success(request).with_body(KvTable { table }.encode())),
        None => Ok(response(
            request,
            ResponseCode::QUERY_NOT_FOUND,
            Some(format!("No config item, Namespace: {}", header.namespace)),
        )),
    }
}

/// Writes the KV file on a blocking thread: SUCCESS once it is durable, SYSTEM_ERROR naming
/// the file otherwise (the change stays in memory, as in Java, and is written with the next
/// successful change).
async fn persisted(processor: &NamesrvProcessor, request: &RemotingCommand) -> RemotingCommand {
    let kv = processor.kv.clone();
    let outcome = tokio::task::spawn_blocking(move || kv.persist()).await;
    let error = match outcome {
        Ok(Ok(())) => return success(request),
        Ok(Err(error)) => error.to_string(),
        Err(join_error) => format!("kv config persist task failed: {join_error}"),
    };
    tracing::error!(%error, "cannot persist the kv config");
    response(
        request,
        ResponseCode::SYSTEM_ERROR,
        Some(format!("persist kv config failed: {error}")),
    )
}
