//! LOCK_BATCH_MQ / UNLOCK_BATCH_MQ bodies (spec §8.12, §9.7) and `MessageQueue`.

use super::{Bean, JsonBody, Props};
use crate::error::Result;
use crate::json::Value;

/// A queue of a topic on one broker group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageQueue {
    /// Topic.
    pub topic: String,
    /// Broker group name.
    pub broker_name: String,
    /// Queue id.
    pub queue_id: i32,
}

/// LOCK_BATCH_MQ request body; UNLOCK_BATCH_MQ has the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockBatchRequestBody {
    /// Consumer group.
    pub consumer_group: String,
    /// Requesting client id.
    pub client_id: String,
    /// Skip quorum locking across replicas.
    pub only_this_broker: bool,
    /// Queues to lock.
    pub mq_set: Vec<MessageQueue>,
}

/// UNLOCK_BATCH_MQ request body.
pub type UnlockBatchRequestBody = LockBatchRequestBody;

/// LOCK_BATCH_MQ response body: the queues now held by the client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockBatchResponseBody {
    /// Locked queues.
    pub lock_ok_mq_set: Vec<MessageQueue>,
}

impl JsonBody for MessageQueue {
    fn to_json(&self) -> Value {
        Bean::new()
            .put("brokerName", Value::string(self.broker_name.clone()))
            .put("queueId", Value::int(self.queue_id))
            .put("topic", Value::string(self.topic.clone()))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "MessageQueue")?;
        Ok(Self {
            topic: props.string("topic")?,
            broker_name: props.string("brokerName")?,
            queue_id: props.i32_or("queueId", 0)?,
        })
    }
}

fn queues_json(queues: &[MessageQueue]) -> Value {
    Value::Array(queues.iter().map(JsonBody::to_json).collect())
}

impl JsonBody for LockBatchRequestBody {
    fn to_json(&self) -> Value {
        Bean::new()
            .put("clientId", Value::string(self.client_id.clone()))
            .put("consumerGroup", Value::string(self.consumer_group.clone()))
            .put("mqSet", queues_json(&self.mq_set))
            .put("onlyThisBroker", Value::Bool(self.only_this_broker))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "LockBatchRequestBody")?;
        Ok(Self {
            consumer_group: props.string("consumerGroup")?,
            client_id: props.string("clientId")?,
            only_this_broker: props.bool_or("onlyThisBroker", false)?,
            mq_set: props
                .array("mqSet")?
                .iter()
                .map(MessageQueue::from_json)
                .collect::<Result<_>>()?,
        })
    }
}

impl JsonBody for LockBatchResponseBody {
    fn to_json(&self) -> Value {
        Bean::new().put("lockOKMQSet", queues_json(&self.lock_ok_mq_set)).build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "LockBatchResponseBody")?;
        Ok(Self {
            lock_ok_mq_set: props
                .array("lockOKMQSet")?
                .iter()
                .map(MessageQueue::from_json)
                .collect::<Result<_>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_lock_request_and_response() {
        let queue = MessageQueue { topic: "T".into(), broker_name: "b".into(), queue_id: 0 };
        let request = LockBatchRequestBody {
            consumer_group: "G".into(),
            client_id: "c".into(),
            only_this_broker: false,
            mq_set: vec![queue.clone()],
        };
        let text = String::from_utf8(request.encode()).unwrap();
        assert_eq!(
            text,
            r#"{"clientId":"c","consumerGroup":"G","mqSet":[{"brokerName":"b","queueId":0,"topic":"T"}],"onlyThisBroker":false}"#
        );
        assert_eq!(LockBatchRequestBody::decode(text.as_bytes()).unwrap(), request);
        let response = LockBatchResponseBody { lock_ok_mq_set: vec![queue] };
        let text = String::from_utf8(response.encode()).unwrap();
        assert_eq!(text, r#"{"lockOKMQSet":[{"brokerName":"b","queueId":0,"topic":"T"}]}"#);
        assert_eq!(LockBatchResponseBody::decode(text.as_bytes()).unwrap(), response);
    }
}
