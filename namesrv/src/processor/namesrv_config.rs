//! UPDATE_NAMESRV_CONFIG (318) and GET_NAMESRV_CONFIG (319): the runtime configuration as
//! properties text. An update changes only keys the config already has, refuses black-listed
//! keys (NO_PERMISSION), and is persisted to `configStorePath` before it is answered.

use ferromq_remoting::{RemotingCommand, ResponseCode};

use super::{Handled, NamesrvProcessor, response, success};
use crate::atomic_file::write_atomically;
use crate::properties;

pub(super) async fn update(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    if request.body.is_empty() {
        return Ok(success(request));
    }
    let text = String::from_utf8_lossy(&request.body);
    let entries = properties::parse(&text);
    let (text, path) = {
        let mut config = processor.config.write();
        let black_list = config.black_list();
        if entries.iter().any(|(key, _)| black_list.contains(key)) {
            return Ok(response(
                request,
                ResponseCode::NO_PERMISSION,
                Some("Can not update config in black list.".to_owned()),
            ));
        }
        if let Err(error) = config.update(&entries) {
            return Ok(response(request, ResponseCode::SYSTEM_ERROR, Some(error.to_string())));
        }
        (config.to_properties_text(), config.config_store_path.clone())
    };
    tracing::info!(path = %path.display(), "name server config updated");
    let outcome =
        tokio::task::spawn_blocking(move || write_atomically(&path, text.as_bytes())).await;
    let error = match outcome {
        Ok(Ok(())) => return Ok(success(request)),
        Ok(Err(error)) => error.to_string(),
        Err(join_error) => format!("config persist task failed: {join_error}"),
    };
    tracing::error!(%error, "cannot persist the name server config");
    Ok(response(
        request,
        ResponseCode::SYSTEM_ERROR,
        Some(format!("config updated in memory but not persisted: {error}")),
    ))
}

pub(super) fn get(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let text = processor.config.read().to_properties_text();
    Ok(success(request).with_body(text.into_bytes()))
}
