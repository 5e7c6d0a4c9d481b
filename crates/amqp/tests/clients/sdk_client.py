"""The cloud SDK's conversation, spoken by pika (a Python AMQP 0-9-1 client) against
mqgate-amqp's test server (tests/interop.rs). Prints one line per finding, in the format
all the client scripts share; the Rust test checks them together with what its server saw.

    python3 sdk_client.py PORT sdk|badpass
"""
import base64
import datetime
import decimal
import hashlib
import hmac
import sys
import time
import uuid

import pika

port, mode = int(sys.argv[1]), sys.argv[2]
INSTANCE, AK, SK = "post-cn-test", "AK-id", "SK-secret"

# The SDK's credentials: Base64("0:" + instance + ":" + AccessKeyId) and
# Base64(HMAC-SHA1(secret, ts)), with ts also sent as the client property signKey.
ts = str(int(time.time() * 1000))
username = base64.b64encode(f"0:{INSTANCE}:{AK}".encode()).decode()
secret = SK if mode == "sdk" else "wrong-secret"
password = base64.b64encode(hmac.new(secret.encode(), ts.encode(), hashlib.sha1).digest()).decode()
params = pika.ConnectionParameters(
    host="127.0.0.1",
    port=port,
    virtual_host="MQTT",
    credentials=pika.PlainCredentials(username, password),
    heartbeat=10,
    locale="en_US",
    client_properties={"signKey": ts},
    connection_attempts=1,
    socket_timeout=5,
    blocked_connection_timeout=10,
)


def out(*words):
    print(*words, flush=True)


if mode == "badpass":
    try:
        pika.BlockingConnection(params)
        out("login accepted")
    except pika.exceptions.AMQPConnectionError as e:
        out("login refused", type(e).__name__)
    sys.exit(0)

conn = pika.BlockingConnection(params)
out("connected")

# --- send, as the SDK producers do: confirm mode, exchange = routing key = the topic,
# mandatory, a 32-hex message id, persistent, headers (Java adds a long seqId).
pub = conn.channel()
pub.confirm_delivery()
headers = {
    "seqId": 1 << 40,
    "small": 7,
    "flag": True,
    "text": "ünïcödé",
    "raw": b"\x00\x01\xff",
    "nested": {"list": [1, "two", None]},
    "dec": decimal.Decimal("-1.25"),
    "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
}
props = pika.BasicProperties(
    message_id=uuid.uuid4().hex.upper(), delivery_mode=2, headers=headers,
    content_type="application/octet-stream",
)
pub.basic_publish("parent/sub/x", "parent/sub/x", b"hello", props, mandatory=True)
out("confirm ack")
def sdk_props():
    return pika.BasicProperties(message_id=uuid.uuid4().hex, delivery_mode=2)


try:
    pub.basic_publish("parent/nack", "parent/nack", b"refuse me", sdk_props(), mandatory=True)
    out("nack missing")
except pika.exceptions.NackError:
    out("confirm nack")
try:
    pub.basic_publish("parent/unroutable", "parent/unroutable", b"lost", sdk_props(), mandatory=True)
    out("return missing")
except pika.exceptions.UnroutableError:
    out("confirm returned")
# A body larger than a frame: pika splits it, the server joins it.
big = bytes(range(256)) * 1200
pub.basic_publish("parent/big", "parent/big", big, sdk_props(), mandatory=True)
out("confirm big")

# --- consume device messages, as the SDK consumers do: prefetch, no-ack false, a 32-hex
# consumer tag (Go), ack each, nack (requeue false) the one the listener fails on.
sub = conn.channel()
sub.basic_qos(prefetch_count=2)
got = []


def on_message(ch, method, properties, body):
    h = properties.headers or {}
    out("msg", method.delivery_tag, str(method.redelivered).lower(), properties.message_id,
        h.get("mqttParentTopic"), h.get("mqttSecondTopic"), h.get("clientId"), body.decode())
    got.append(body)
    if body == b"msg-3":
        ch.basic_nack(method.delivery_tag, multiple=False, requeue=False)
    else:
        ch.basic_ack(method.delivery_tag)


tag = uuid.uuid4().hex
sub.basic_consume("parent", on_message, auto_ack=False, consumer_tag=tag)
out("consuming", tag)

# --- status notices: queue STATUS with the group id as an argument.
status = []


def on_status(ch, method, properties, body):
    out("status", body.decode())
    status.append(body)
    ch.basic_ack(method.delivery_tag)


stat = conn.channel()
stat.basic_consume("STATUS", on_status, auto_ack=False, arguments={"GROUP_ID": "GID_backend"})

deadline = time.time() + 20
while (len(got) < 5 or not status) and time.time() < deadline:
    conn.process_data_events(time_limit=0.2)
out("received", len(got), len(status))

# queue.declare is refused on the channel only; the connection stays usable.
side = conn.channel()
try:
    side.queue_declare("anything")
    out("declare accepted")
except pika.exceptions.ChannelClosedByBroker as e:
    out("declare refused", e.reply_code)
pub.basic_publish("parent/after", "parent/after", b"still open", sdk_props(), mandatory=True)
out("still open")
conn.close()
out("closed")
