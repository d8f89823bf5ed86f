// Interop check with ali-ons (npm, pure JavaScript): produce N messages with tags and keys
// through the name server, consume them with a push consumer, exit 0 when all came back.
// Usage: node ali_ons.js [namesrv host:port] [count]
'use strict';
const httpclient = require('urllib');
const { Producer, Consumer, Message } = require('ali-ons');

const nameSrv = process.argv[2] || '127.0.0.1:9876';
const count = Number(process.argv[3] || 50);
const brokerAddr = process.argv[4] || '127.0.0.1:10911';
const run = `${process.pid}`;
const topic = `js_interop_${run}`;
const common = { httpclient, nameSrv, accessKeyId: 'none', accessKeySecret: 'none' };

async function main() {
  const producer = new Producer({ ...common, producerGroup: `PID_js_${run}` });
  await producer.ready();
  // ali-ons does not fall back to TBW102 when the name server has no route (it throws on
  // TOPIC_NOT_EXIST), so the topic is created first, as its users do with mqadmin.
  const topicConfig = { topicName: topic, readQueueNums: 4, writeQueueNums: 4, perm: 6, topicFilterType: 'SINGLE_TAG', topicSysFlag: 0, order: false };
  await producer._mqClient.createTopic(brokerAddr, 'TBW102', topicConfig, 3000);
  // The broker registers the new topic with the name server at once; give it a moment.
  await new Promise(r => setTimeout(r, 500));
  const sent = new Set();
  for (let i = 0; i < count; i++) {
    const msg = new Message(topic, `tag${i % 3}`, `js-${i}`);
    msg.keys = [`key-${i}`];
    const result = await producer.send(msg);
    if (result.sendStatus !== 'SEND_OK') throw new Error(`send ${i}: ${JSON.stringify(result)}`);
    sent.add(`js-${i}`);
  }
  await producer.close();
  const seen = new Set();
  const consumer = new Consumer({ ...common, consumerGroup: `GID_js_${run}`, consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
  let failedOnce = false;
  consumer.subscribe(topic, '*', async msg => {
    const body = msg.body.toString();
    // Fail one message once: it must come back through the broker's retry path.
    if (body === 'js-0' && !failedOnce) {
      failedOnce = true;
      throw new Error('retry me');
    }
    seen.add(body);
  });
  consumer.on('error', err => console.error('consumer error', err.message));
  await consumer.ready();
  const deadline = Date.now() + 90000;
  while (seen.size < sent.size && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 200));
  }
  await consumer.close();
  console.log(`ali-ons interop: sent ${sent.size}, consumed ${seen.size}, retried ${failedOnce}`);
  if (seen.size !== sent.size) throw new Error(`consumed ${seen.size} of ${sent.size}`);
}

main().then(() => process.exit(0), err => { console.error(err); process.exit(1); });
