//! UPDATE_BROKER_CONFIG (25): new settings for a running broker (broker.md §1.6) — among
//! them `brokerRole` and `brokerId`, which is how an admin command switches a group's master.
//!
//! The body is Java properties text, as `MQClientAPIImpl.updateBrokerConfig` sends it. As in
//! Java, a black-listed key (`configBlackList`, `brokerConfigPath`) is refused with
//! NO_PERMISSION `Can not update config in black list.`, and an empty body changes nothing.
//! Unlike Java, which skips keys it does not know and keeps the old value of one that does
//! not parse, every key must be one [`BrokerConfig::apply`] knows, every value must parse,
//! and the result must pass [`BrokerConfig::finish`] (a SLAVE needs `brokerId` ≥ 1; a master's
//! `brokerId` is 0); otherwise the answer is SYSTEM_ERROR naming the key, and nothing changes.
//!
//! An accepted change is first written into the broker's `-c` file, if it was started from
//! one ([`BrokerConfig::config_file`]): the given keys only, other lines and comments kept
//! (Java rewrites the whole file from memory). Then the broker reopens in-process with the
//! new settings. Every task reads the broker's settings without a lock, so they change only
//! by reopening: the path a slave already takes to cut its CommitLog ([`crate::ha`]). The
//! reply goes out first — the listener's graceful stop lets requests in flight answer — then
//! the broker stops serving, closes its store, and whoever runs it (`main`) opens it again
//! on the same ports, as a master or a slave when `brokerRole`/`brokerId` changed, and it
//! registers with the name servers under its new id at once. An update that changes nothing
//! answers SUCCESS without reopening. GET_BROKER_CONFIG reports accepted values at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferromq_remoting::transport::Reply;
use ferromq_remoting::{RemotingCommand, ResponseCode};

use crate::broker::{Broker, respond};
use crate::config::{BrokerConfig, BrokerRole, ConfigError};

/// Keys an update may never change: Java's default `configBlackList`.
pub const BLACK_LIST: [&str; 2] = ["configBlackList", "brokerConfigPath"];

/// Why an update was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// A key [`BrokerConfig::apply`] does not know.
    #[error("unknown broker config key `{key}`")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A value that does not parse, or settings [`BrokerConfig::finish`] rejects.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A slave's id given together with a master's role.
    #[error(
        "broker config key `brokerId`: {id} is a slave's id, but brokerRole is {role}: a master has brokerId 0"
    )]
    MasterId {
        /// The id given.
        id: i64,
        /// The role it would have.
        role: &'static str,
    },
    /// A value the properties file cannot hold as our reader reads it back.
    #[error("broker config key `{key}`: the value has a character outside U+0000..=U+FFFF")]
    Unwritable {
        /// The key.
        key: String,
    },
    /// The config file cannot be rewritten.
    #[error("cannot rewrite the config file {path}: {source}")]
    Persist {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What an accepted update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every value was already in force.
    Unchanged,
    /// The broker reopens with the new settings, in this role and with this id.
    Reopening {
        /// `brokerRole` after the update.
        role: BrokerRole,
        /// `brokerId` after the update.
        id: i64,
    },
}

/// UPDATE_BROKER_CONFIG: checks and persists the update, then asks for the reopening; the
/// reply is SUCCESS, NO_PERMISSION (black-listed key) or SYSTEM_ERROR with the reason.
pub async fn update(broker: &Arc<Broker>, request: &RemotingCommand) -> Reply {
    let text = String::from_utf8_lossy(&request.body).into_owned();
    let entries = ferromq_namesrv::properties::parse(&text);
    if entries.iter().any(|(key, _)| BLACK_LIST.contains(&key.as_str())) {
        let remark = "Can not update config in black list.".to_owned();
        return respond(request, ResponseCode::NO_PERMISSION, remark).into();
    }
    if entries.is_empty() {
        return respond(request, ResponseCode::SUCCESS, None).into();
    }
    let keys: Vec<String> = entries.iter().map(|(key, _)| key.clone()).collect();
    match broker.blocking(move |broker| apply(broker, &entries)).await {
        Some(Ok(outcome)) => {
            if let Outcome::Reopening { role, id } = outcome {
                tracing::warn!(
                    ?keys,
                    role = role.name(),
                    id,
                    "broker config updated: reopening the broker with the new settings"
                );
            }
            respond(request, ResponseCode::SUCCESS, None).into()
        }
        Some(Err(error)) => {
            tracing::warn!(?keys, %error, "broker config update refused");
            let remark = match error {
                // The rename may have happened before a later step (the directory's sync)
                // failed.
                UpdateError::Persist { .. } => {
                    format!("{error}; the running settings are unchanged")
                }
                _ => format!("{error}; nothing was changed"),
            };
            respond(request, ResponseCode::SYSTEM_ERROR, remark).into()
        }
        None => {
            let remark = "the config update task failed; nothing was changed".to_owned();
            respond(request, ResponseCode::SYSTEM_ERROR, remark).into()
        }
    }
}

/// Applies `entries` on top of the settings the broker will next open with (those of a
/// pending update, else its own), writes them to its config file and asks for the reopening.
/// The pending settings stay locked throughout, so concurrent updates apply one after the
/// other (Java's handler is `synchronized`) and none is lost.
///
/// # Errors
///
/// [`UpdateError`]; nothing was changed, in memory or on disk.
pub fn apply(broker: &Broker, entries: &[(String, String)]) -> Result<Outcome, UpdateError> {
    let mut pending = broker.ha.reopen_config.lock();
    let base = pending.clone().unwrap_or_else(|| broker.config.clone());
    let next = updated(&base, entries)?;
    if next.to_properties() == base.to_properties() {
        return Ok(Outcome::Unchanged);
    }
    if let Some(path) = &next.config_file {
        persist(path, &file_entries(&base, &next, entries)?)?;
    }
    let outcome = Outcome::Reopening { role: next.broker_role, id: next.broker_id };
    *pending = Some(next);
    drop(pending);
    broker.ha.request_restart();
    Ok(outcome)
}

/// `base` with `entries` applied (later entries win) and checked.
///
/// # Errors
///
/// An unknown key, a bad value, a master given a slave's id, or what
/// [`BrokerConfig::finish`] rejects.
pub fn updated(
    base: &BrokerConfig,
    entries: &[(String, String)],
) -> Result<BrokerConfig, UpdateError> {
    let mut next = base.clone();
    for (key, value) in entries {
        if !next.apply(key, value)? {
            return Err(UpdateError::UnknownKey { key: key.clone() });
        }
    }
    // `finish` quietly gives a master id 0 (Java's start-up rule); an update that names a
    // slave's id for a master is a mistake worth reporting instead.
    let id_given = entries.iter().any(|(key, _)| key == "brokerId");
    if id_given && next.is_master() && next.broker_id != 0 {
        return Err(UpdateError::MasterId { id: next.broker_id, role: next.broker_role.name() });
    }
    next.finish()?;
    Ok(next)
}

/// The lines to write: each given key with the value now in force (as GET_BROKER_CONFIG
/// shows it), plus `brokerId` when the role rule changed it.
fn file_entries(
    base: &BrokerConfig,
    next: &BrokerConfig,
    entries: &[(String, String)],
) -> Result<Vec<(String, String)>, UpdateError> {
    let in_force = next.to_properties();
    let mut lines: Vec<(String, String)> = Vec::new();
    for (key, given) in entries {
        let value = in_force
            .iter()
            .find(|(name, _)| name == key)
            .map_or_else(|| given.trim().to_owned(), |(_, value)| value.clone());
        if value.chars().any(|ch| u32::from(ch) > 0xFFFF) {
            return Err(UpdateError::Unwritable { key: key.clone() });
        }
        match lines.iter_mut().find(|(name, _)| name == key) {
            Some(line) => line.1 = value,
            None => lines.push((key.clone(), value)),
        }
    }
    if base.broker_id != next.broker_id && !lines.iter().any(|(key, _)| key == "brokerId") {
        lines.push(("brokerId".to_owned(), next.broker_id.to_string()));
    }
    Ok(lines)
}

/// Rewrites `path` with `entries` (atomically, keeping the previous file as `.bak`).
fn persist(path: &Path, entries: &[(String, String)]) -> Result<(), UpdateError> {
    let error = |source| UpdateError::Persist { path: path.to_owned(), source };
    let old = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(error(source)),
    };
    // Properties files are ISO-8859-1: one char per byte, and back.
    let text: String = old.iter().map(|&byte| char::from(byte)).collect();
    let rewritten = rewrite_properties(&text, entries);
    let bytes: Vec<u8> = rewritten.chars().map(|ch| u8::try_from(ch).unwrap_or(b'?')).collect();
    crate::persist::write_atomic(path, &bytes).map_err(error)
}

/// `text` (a properties file) with each key of `entries` set: its first entry replaced by
/// `key=value` (a value spread over continuation lines too), later entries of it removed,
/// keys not present appended. Every other line is kept as it was.
pub fn rewrite_properties(text: &str, entries: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut written = vec![false; entries.len()];
    let mut lines = text.split_inclusive('\n');
    while let Some(first) = lines.next() {
        let content = first.trim_start_matches([' ', '\t', '\u{c}']);
        let bare = content.trim_end_matches(['\n', '\r']);
        if bare.is_empty() || bare.starts_with('#') || bare.starts_with('!') {
            out.push_str(first);
            continue;
        }
        // One logical line: the physical lines joined by trailing backslashes.
        let mut group = first.to_owned();
        while ends_with_continuation(group.trim_end_matches(['\n', '\r'])) {
            match lines.next() {
                Some(next) => group.push_str(next),
                None => break,
            }
        }
        let key = ferromq_namesrv::properties::parse(&group).into_iter().next().map(|(k, _)| k);
        let index = key.and_then(|key| entries.iter().position(|(name, _)| *name == key));
        match index {
            None => out.push_str(&group),
            Some(index) if written[index] => {}
            Some(index) => {
                written[index] = true;
                push_entry(&mut out, &entries[index]);
            }
        }
    }
    for (entry, done) in entries.iter().zip(written) {
        if !done {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            push_entry(&mut out, entry);
        }
    }
    out
}

fn push_entry(out: &mut String, (key, value): &(String, String)) {
    out.push_str(key);
    out.push('=');
    out.push_str(&escape_value(value));
    out.push('\n');
}

/// True when the line ends in an odd number of backslashes (it continues on the next).
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|&ch| ch == '\\').count() % 2 == 1
}

/// A value as `java.util.Properties.store` would write it, in ASCII: `\`, control
/// characters and a leading space escaped, other non-ASCII characters as `\uXXXX` (the file
/// is ISO-8859-1; callers refuse characters beyond U+FFFF).
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (index, ch) in value.chars().enumerate() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            ' ' if index == 0 => out.push_str("\\ "),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_properties;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn rewrite_replaces_keeps_and_appends() {
        let text = "# broker-a\r\nbrokerName = broker-a\r\nbrokerRole=ASYNC_MASTER\n\
                    messageDelayLevel=1s \\\n    5s\nbrokerId=0\nbrokerRole=SYNC_MASTER\n\
                    ! trailing comment";
        let entries = pairs(&[
            ("brokerRole", "SLAVE"),
            ("messageDelayLevel", "2s"),
            ("brokerId", "1"),
            ("haMasterAddress", "10.0.0.1:10912"),
        ]);
        let rewritten = rewrite_properties(text, &entries);
        assert_eq!(
            rewritten,
            "# broker-a\r\nbrokerName = broker-a\r\nbrokerRole=SLAVE\nmessageDelayLevel=2s\n\
             brokerId=1\n! trailing comment\nhaMasterAddress=10.0.0.1:10912\n"
        );
        let read = parse_properties(rewritten.as_bytes());
        let get = |k: &str| read.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("brokerRole"), Some("SLAVE"));
        assert_eq!(get("brokerName"), Some("broker-a"));
        assert_eq!(rewrite_properties("", &entries[..1]), "brokerRole=SLAVE\n");
    }

    #[test]
    fn escaped_values_read_back_unchanged() {
        for value in ["plain", " lead", "a\\b", "tab\tnew\nline", "caf\u{e9}", "\u{4e2d}"] {
            let text = rewrite_properties("", &pairs(&[("regionId", value)]));
            assert!(text.is_ascii(), "{text:?}");
            let bytes: Vec<u8> = text.chars().map(|ch| u8::try_from(ch).unwrap()).collect();
            assert_eq!(parse_properties(&bytes), pairs(&[("regionId", value)]), "{value:?}");
        }
    }

    #[test]
    fn updated_checks_keys_values_and_roles() {
        let dir = tempfile::tempdir().unwrap();
        let mut master = BrokerConfig::with_store_dir(dir.path());
        master.finish().unwrap();
        let slave = updated(&master, &pairs(&[("brokerRole", "SLAVE"), ("brokerId", "1")]));
        let slave = slave.unwrap();
        assert_eq!((slave.broker_role, slave.broker_id), (BrokerRole::Slave, 1));
        let promoted = updated(&slave, &pairs(&[("brokerRole", "SYNC_MASTER")])).unwrap();
        assert_eq!((promoted.broker_role, promoted.broker_id), (BrokerRole::SyncMaster, 0));

        let unknown = updated(&master, &pairs(&[("fileReservedTime", "4"), ("noSuchKey", "1")]));
        assert!(matches!(unknown, Err(UpdateError::UnknownKey { ref key }) if key == "noSuchKey"));
        let error = updated(&master, &pairs(&[("brokerRole", "MASTER")])).unwrap_err();
        assert!(error.to_string().contains("`brokerRole`"), "{error}");
        let error = updated(&master, &pairs(&[("brokerRole", "SLAVE")])).unwrap_err();
        assert!(error.to_string().contains("`brokerId`"), "{error}");
        let error = updated(&master, &pairs(&[("brokerId", "2")])).unwrap_err();
        assert!(matches!(error, UpdateError::MasterId { id: 2, .. }), "{error}");
    }

    #[test]
    fn file_entries_write_values_in_force_and_a_changed_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut slave = BrokerConfig::with_store_dir(dir.path());
        slave.apply("brokerRole", "SLAVE").unwrap();
        slave.apply("brokerId", "2").unwrap();
        slave.finish().unwrap();
        let entries = pairs(&[("brokerRole", " ASYNC_MASTER "), ("registerNameServerPeriod", "1")]);
        let next = updated(&slave, &entries).unwrap();
        let lines = file_entries(&slave, &next, &entries).unwrap();
        assert_eq!(
            lines,
            pairs(&[
                ("brokerRole", "ASYNC_MASTER"),
                ("registerNameServerPeriod", "10000"),
                ("brokerId", "0"),
            ])
        );
        let wide = pairs(&[("regionId", "\u{1f600}")]);
        let next = updated(&slave, &wide).unwrap();
        assert!(matches!(file_entries(&slave, &next, &wide), Err(UpdateError::Unwritable { .. })));
    }
}
