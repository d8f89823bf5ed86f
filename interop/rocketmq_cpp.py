"""Interop check with Apache rocketmq-client-cpp through the PyPI `rocketmq` binding:
produce N messages with tags and keys through the name server, consume them with a push
consumer, exit 0 when every message came back.

Usage: python rocketmq_cpp.py [namesrv host:port] [count]
"""
import os
import sys
import threading
import time

from rocketmq.client import Message, Producer, PushConsumer

namesrv = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9876"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 50
run = str(os.getpid())
topic = f"py_interop_{run}"

producer = Producer(f"PID_py_{run}")
producer.set_namesrv_addr(namesrv)
producer.start()
sent = set()
for i in range(count):
    msg = Message(topic)
    msg.set_keys(f"key-{i}")
    msg.set_tags(f"tag{i % 3}")
    msg.set_body(f"py-{i}")
    result = producer.send_sync(msg)
    if result.status != 0:  # SendStatus.OK
        raise SystemExit(f"send {i} failed: {result.status}")
    sent.add(f"py-{i}")
producer.shutdown()

seen = set()
lock = threading.Lock()


failed_once = []


def on_message(msg):
    body = msg.body.decode()
    # Fail one message once: it must come back through the broker's retry path.
    if body == "py-0" and not failed_once:
        failed_once.append(True)
        raise RuntimeError("retry me")
    with lock:
        seen.add(body)


consumer = PushConsumer(f"GID_py_{run}")
consumer.set_namesrv_addr(namesrv)
consumer.subscribe(topic, on_message)
consumer.start()
deadline = time.time() + 90
while time.time() < deadline:
    with lock:
        if len(seen) >= len(sent):
            break
    time.sleep(0.2)
consumer.shutdown()
print(f"rocketmq-client-cpp interop: sent {len(sent)}, consumed {len(seen)}, retried {bool(failed_once)}")
sys.exit(0 if seen == sent else 1)
