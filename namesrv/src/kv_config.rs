//! The KV config store (`KVConfigManager`): namespace → key → value, kept in memory and
//! persisted after every change to `kvConfigPath` in RocketMQ's format,
//! `{"configTable":{"<namespace>":{"<key>":"<value>"}}}`, so a file moves between ferromq
//! and a Java name server. The `ORDER_TOPIC_CONFIG` namespace holds order-topic configs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferromq_remoting::json::{self, JsonStyle, Object, Value};
use parking_lot::{Mutex, RwLock};

use crate::atomic_file::write_atomically;
use crate::error::{Error, Result};

/// The namespace of order-topic configs (`NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG`).
pub(crate) const NAMESPACE_ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

/// Namespace → key → value.
pub(crate) type KvTable = BTreeMap<String, BTreeMap<String, String>>;

/// The KV table and the file it is persisted to.
#[derive(Debug)]
pub(crate) struct KvConfigManager {
    path: PathBuf,
    table: RwLock<KvTable>,
    /// Serialises writers of the file, so the last write always holds the latest table.
    persisting: Mutex<()>,
}

impl KvConfigManager {
    /// Loads `path`; a missing file is an empty table.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file exists but cannot be read, [`Error::KvConfigMalformed`]
    /// when it is not RocketMQ's format.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let table = match std::fs::read(path) {
            Ok(bytes) => decode_table(&bytes)
                .map_err(|source| Error::KvConfigMalformed { path: path.to_owned(), source })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => KvTable::new(),
            Err(source) => return Err(Error::Io { path: path.to_owned(), source }),
        };
        Ok(Self { path: path.to_owned(), table: RwLock::new(table), persisting: Mutex::new(()) })
    }

    pub(crate) fn put(&self, namespace: &str, key: &str, value: &str) {
        let previous = self
            .table
            .write()
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
        tracing::info!(namespace, key, value, updated = previous.is_some(), "kv config put");
    }

    /// Removes one key; an emptied namespace stays (as in Java, it then lists as `{}`).
    pub(crate) fn delete(&self, namespace: &str, key: &str) {
        let removed = self.table.write().get_mut(namespace).and_then(|table| table.remove(key));
        tracing::info!(namespace, key, removed = ?removed, "kv config delete");
    }

    pub(crate) fn get(&self, namespace: &str, key: &str) -> Option<String> {
        self.table.read().get(namespace)?.get(key).cloned()
    }

    /// The whole namespace, `None` when it does not exist.
    pub(crate) fn namespace(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.table.read().get(namespace).cloned()
    }

    /// Writes the current table to the file, atomically. Blocks on disk I/O: call it from a
    /// blocking thread.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file.
    pub(crate) fn persist(&self) -> Result<()> {
        let _writer = self.persisting.lock();
        // Taken after the writer lock: a later change is never overwritten by an older table.
        let bytes = encode_table(&self.table.read());
        write_atomically(&self.path, &bytes)
    }
}

/// The file format: fastjson's `KVConfigSerializeWrapper.toJson()`.
pub(crate) fn encode_table(table: &KvTable) -> Vec<u8> {
    let mut namespaces = Object::new();
    for (namespace, entries) in table {
        let mut object = Object::new();
        for (key, value) in entries {
            object.insert(key.clone(), Value::string(value.clone()));
        }
        namespaces.insert(namespace.clone(), Value::Object(object));
    }
    let mut wrapper = Object::new();
    wrapper.insert("configTable", Value::Object(namespaces));
    json::to_vec(&Value::Object(wrapper), JsonStyle::Fastjson)
}

fn decode_table(bytes: &[u8]) -> ferromq_remoting::Result<KvTable> {
    let malformed = |reason| ferromq_remoting::Error::Json { offset: 0, reason };
    let root = json::parse(bytes)?;
    let root = root.as_object().ok_or(malformed("expected an object"))?;
    let mut table = KvTable::new();
    let namespaces = match root.get("configTable") {
        None | Some(Value::Null) => return Ok(table),
        Some(Value::Object(namespaces)) => namespaces,
        Some(_) => return Err(malformed("configTable is not an object")),
    };
    for (namespace, entries) in namespaces.iter() {
        let namespace = namespace.key_text().ok_or(malformed("a namespace is not a string"))?;
        let entries = entries.as_object().ok_or(malformed("a namespace is not an object"))?;
        let target = table.entry(namespace.into_owned()).or_default();
        for (key, value) in entries.iter() {
            let key = key.key_text().ok_or(malformed("a key is not a string"))?;
            // A null value is how fastjson would write a Java null; skip it.
            if let Some(value) = value.to_field_string() {
                target.insert(key.into_owned(), value);
            }
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_file_format() {
        let table = KvTable::from([(
            NAMESPACE_ORDER_TOPIC_CONFIG.to_owned(),
            BTreeMap::from([("T".to_owned(), "broker-a:4;broker-b:4".to_owned())]),
        )]);
        let bytes = encode_table(&table);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"configTable":{"ORDER_TOPIC_CONFIG":{"T":"broker-a:4;broker-b:4"}}}"#
        );
        assert_eq!(decode_table(&bytes).unwrap(), table);
    }

    #[test]
    fn reads_a_java_written_file() {
        // Java 4.9 writes `toJson(false)`; older versions wrote it pretty-printed.
        let text =
            "{\n\t\"configTable\":{\n\t\t\"NS\":{\n\t\t\t\"k\":\"v\",\"n\":null\n\t\t}\n\t}\n}";
        let table = decode_table(text.as_bytes()).unwrap();
        assert_eq!(table["NS"], BTreeMap::from([("k".to_owned(), "v".to_owned())]));
        assert!(decode_table(b"{}").unwrap().is_empty());
        assert!(decode_table(b"[1]").is_err());
        assert!(decode_table(br#"{"configTable":{"NS":7}}"#).is_err());
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kvConfig.json");
        let kv = KvConfigManager::load(&path).unwrap();
        assert_eq!(kv.get("NS", "k"), None);
        kv.put("NS", "k", "v1");
        kv.put("NS", "k", "v2");
        kv.put("NS", "gone", "x");
        kv.delete("NS", "gone");
        kv.persist().unwrap();
        let reloaded = KvConfigManager::load(&path).unwrap();
        assert_eq!(reloaded.get("NS", "k").as_deref(), Some("v2"));
        assert_eq!(reloaded.namespace("NS").unwrap().len(), 1);
        assert_eq!(reloaded.namespace("other"), None);
    }

    #[test]
    fn malformed_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kvConfig.json");
        std::fs::write(&path, b"{not json").unwrap();
        let err = KvConfigManager::load(&path).unwrap_err();
        assert!(err.to_string().contains("kvConfig.json"), "{err}");
    }
}
