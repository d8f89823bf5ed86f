//! Before streaming, a slave checks that its CommitLog is a prefix of its master's — after
//! a master change it may not be: the old master's last records that never reached the new
//! one, or a former master rejoining as a slave. Classic RocketMQ HA does not check (5.x
//! added epochs for it); here the check uses only VIEW_MESSAGE_BY_ID, which every RocketMQ
//! broker serves: the record at a physical offset, byte for byte.
//!
//! Two logs written by different brokers cannot hold the same record at the same offset (a
//! record carries its store host, store time and physical offset), so "the master has my
//! record at offset p" means the logs agree up to the end of that record. The slave asks
//! for its last record; if the master has it, nothing is to be done. Otherwise it finds the
//! newest segment whose first record the master has, then the first record of that segment
//! the master lacks, by bisection: the logs agree before it and nowhere after it. That
//! record's start is where the slave's CommitLog must be cut.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferromq_remoting::headers::ViewMessageRequestHeader;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

use crate::broker::Broker;

const VIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the check could not finish (the slave tries again before its next connection).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    /// The master did not answer.
    #[error("VIEW_MESSAGE_BY_ID {offset} to the master {master}: {reason}")]
    Master {
        /// The master's address.
        master: String,
        /// The offset asked for.
        offset: i64,
        /// What went wrong.
        reason: String,
    },
    /// The local store failed.
    #[error("reading the local commit log at {offset}: {reason}")]
    Local {
        /// Where.
        offset: i64,
        /// What went wrong.
        reason: String,
    },
}

/// The records of one local segment: their starts and the segment's bytes.
struct SegmentRecords {
    from: i64,
    data: Bytes,
    starts: Vec<usize>,
}

impl SegmentRecords {
    /// The local bytes of the record at `starts[index]`, cut at the end of what is written
    /// (the last one may be partial: HA frames cut records anywhere).
    fn record(&self, index: usize) -> &[u8] {
        let start = self.starts[index];
        let end = self.starts.get(index + 1).copied().unwrap_or(self.data.len());
        &self.data[start..end]
    }

    fn offset(&self, index: usize) -> i64 {
        self.from + i64::try_from(self.starts[index]).unwrap_or(i64::MAX)
    }
}

/// The end of the prefix this slave's CommitLog shares with the master at `master_addr`:
/// its own end when the whole log agrees, otherwise the start of the first record the
/// master lacks.
///
/// # Errors
///
/// [`CheckError`] when the master or the store cannot be read.
pub(crate) async fn agreed_end(broker: &Arc<Broker>, master_addr: &str) -> Result<i64, CheckError> {
    let store = &broker.store;
    let (min, end) = (store.min_phy_offset(), store.max_phy_offset());
    if end <= min {
        return Ok(end);
    }
    let segment_size =
        i64::try_from(broker.config.store.mapped_file_size_commit_log).unwrap_or(i64::MAX).max(1);
    let last_segment = ((end - 1) - (end - 1) % segment_size).max(min);
    let last = segment_records(broker, last_segment).await?;
    let Some(tail) = last.starts.len().checked_sub(1) else {
        return Ok(end);
    };
    if master_has(broker, master_addr, last.offset(tail), last.record(tail)).await? {
        return Ok(end);
    }
    // The newest segment whose first record the master has.
    let mut from = last_segment;
    loop {
        let records =
            if from == last_segment { None } else { Some(segment_records(broker, from).await?) };
        let records = records.as_ref().unwrap_or(&last);
        if !records.starts.is_empty()
            && master_has(broker, master_addr, records.offset(0), records.record(0)).await?
        {
            let cut = first_missing(broker, master_addr, records).await?;
            tracing::warn!(
                end,
                cut,
                master = master_addr,
                "this slave's commit log and its master's disagree from here"
            );
            return Ok(cut);
        }
        if from <= min {
            tracing::warn!(
                end,
                master = master_addr,
                "this slave's commit log shares nothing with its master's"
            );
            return Ok(min);
        }
        from = (from - segment_size).max(min);
    }
}

/// Bisection inside a segment whose first record the master has: the start of the first
/// record it lacks, or the segment's end when it has them all.
async fn first_missing(
    broker: &Arc<Broker>,
    master_addr: &str,
    records: &SegmentRecords,
) -> Result<i64, CheckError> {
    let count = records.starts.len();
    assert!(count > 0, "bisection over an empty segment");
    let (mut agree, mut disagree) = (0, count);
    while disagree - agree > 1 {
        let mid = agree + (disagree - agree) / 2;
        if master_has(broker, master_addr, records.offset(mid), records.record(mid)).await? {
            agree = mid;
        } else {
            disagree = mid;
        }
    }
    if disagree == count {
        let data_end = i64::try_from(records.data.len()).unwrap_or(i64::MAX);
        return Ok(records.from + data_end);
    }
    Ok(records.offset(disagree))
}

/// The local segment at `from`, split into records by their size fields.
async fn segment_records(broker: &Arc<Broker>, from: i64) -> Result<SegmentRecords, CheckError> {
    let data = broker.blocking(move |broker| broker.store.commit_log_data(from)).await;
    let data = match data {
        Some(Ok(data)) => data.unwrap_or_default(),
        Some(Err(error)) => {
            return Err(CheckError::Local { offset: from, reason: error.to_string() });
        }
        None => {
            return Err(CheckError::Local { offset: from, reason: "blocking task failed".into() });
        }
    };
    Ok(SegmentRecords { from, starts: record_starts(&data), data })
}

/// Starts of the records in `data` (a segment's written bytes, from a record start), the
/// last possibly cut short. Stops at a size field that is not positive (no record there).
fn record_starts(data: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pos = 0usize;
    while let Some(size) = data.get(pos..pos + 4) {
        let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
        let Some(size) = usize::try_from(size).ok().filter(|size| *size > 0) else {
            break;
        };
        starts.push(pos);
        pos = pos.saturating_add(size);
    }
    starts
}

/// Whether the master's record at `offset` starts with `local` (the whole of a complete
/// local record, or the received part of a cut one).
async fn master_has(
    broker: &Broker,
    master_addr: &str,
    offset: i64,
    local: &[u8],
) -> Result<bool, CheckError> {
    let header = ViewMessageRequestHeader { offset, topic: None };
    let request =
        RemotingCommand::request(RequestCode::VIEW_MESSAGE_BY_ID.code()).with_header(&header);
    let response =
        broker.outbound.invoke(master_addr, request, VIEW_TIMEOUT).await.map_err(|e| {
            CheckError::Master { master: master_addr.to_owned(), offset, reason: e.to_string() }
        })?;
    if response.code == ResponseCode::SYSTEM_ERROR.code() {
        // "can not find message by the offset": the master has no record there (it is
        // shorter, or the offset is inside one of its records).
        return Ok(false);
    }
    if response.code != ResponseCode::SUCCESS.code() {
        // Busy or refusing: no answer, and no reason to cut anything.
        let reason = format!("code {} {:?}", response.code, response.remark);
        return Err(CheckError::Master { master: master_addr.to_owned(), offset, reason });
    }
    let remote = &response.body;
    Ok(remote.len() >= local.len() && remote[..local.len()] == *local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_starts_follow_size_fields_and_keep_a_cut_tail() {
        let mut data = Vec::new();
        for size in [20u32, 8, 30] {
            let mut record = vec![0u8; size as usize];
            record[..4].copy_from_slice(&size.to_be_bytes());
            data.extend(record);
        }
        assert_eq!(record_starts(&data), [0, 20, 28]);
        assert_eq!(record_starts(&data[..40]), [0, 20, 28], "a cut record still starts");
        assert_eq!(record_starts(&data[..32]), [0, 20, 28]);
        assert_eq!(record_starts(&data[..31]), [0, 20], "three bytes are no size field");
        data.extend([0u8; 16]);
        assert_eq!(record_starts(&data), [0, 20, 28], "zeros end the records");
        assert!(record_starts(&[]).is_empty());
        assert!(record_starts(&[0xff, 0xff, 0xff, 0xff]).is_empty(), "negative size");
    }
}
