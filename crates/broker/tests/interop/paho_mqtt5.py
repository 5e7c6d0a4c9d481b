# MQTT 5 scenarios with Python paho-mqtt. Usage: python3 paho_mqtt5.py TCP_PORT (run by
# tests/interop.rs against a broker with [mqtt5] max_keep_alive = 60 and
# response_information = "reply/"). Every wait is for the event itself (CONNACK, SUBACK,
# message, acknowledgement), bounded by WAIT seconds; the script exits non-zero on the first
# failed check and prints "mqtt5 scenarios passed" at the end.
import queue
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

PORT = int(sys.argv[1])
WAIT = 5


def client(cid):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.connack, c.suback, c.got, c.acks = queue.Queue(), queue.Queue(), queue.Queue(), queue.Queue()
    c.on_connect = lambda cl, u, flags, rc, props: cl.connack.put((rc, props))
    c.on_subscribe = lambda cl, u, mid, rcs, props: cl.suback.put(rcs)
    c.on_message = lambda cl, u, m: cl.got.put(m)
    c.on_publish = lambda cl, u, mid, rc, props: cl.acks.put(rc)
    return c


def connect(c, keepalive=30, **props):
    properties = Properties(PacketTypes.CONNECT)
    for name, value in props.items():
        setattr(properties, name, value)
    c.connect("127.0.0.1", PORT, keepalive=keepalive, clean_start=True, properties=properties)
    c.loop_start()
    rc, connack = c.connack.get(timeout=WAIT)
    assert not rc.is_failure, rc
    return connack


def subscribe(c, topic, **options):
    c.subscribe(topic, options=SubscribeOptions(qos=1, **options))
    rcs = c.suback.get(timeout=WAIT)
    assert all(not rc.is_failure for rc in rcs), rcs


def stop(c):
    c.disconnect()
    c.loop_stop()


def nothing(c, quiet):
    try:
        m = c.got.get(timeout=quiet)
    except queue.Empty:
        return
    raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")


# CONNACK: Shared Subscription Available 1; Server Keep Alive 60 for a client asking 120
# [MQTT-3.2.2-21]; Response Information only when asked for [MQTT-3.1.2-28].
asker = client("p5-asker")
connack = connect(asker, keepalive=120, RequestResponseInformation=1)
assert connack.SharedSubscriptionAvailable == 1, connack
assert connack.ServerKeepAlive == 60, connack
assert connack.ResponseInformation == "reply/p5-asker", connack
stop(asker)
plain = client("p5-plain")
connack = connect(plain, keepalive=30)
assert not hasattr(connack, "ServerKeepAlive"), connack
assert not hasattr(connack, "ResponseInformation"), connack
print("connack ok")

# PUBACK 0x10 (No matching subscribers) for a QoS 1 PUBLISH nobody receives (3.4.2.1).
plain.publish("p5/nobody", b"x", qos=1)
rc = plain.acks.get(timeout=WAIT)
assert rc.value == 0x10, rc
print("puback 0x10 ok")

# Shared subscription: each message to one member of the group (4.8.2).
members = [client(f"p5-member-{i}") for i in range(2)]
for m in members:
    connect(m)
    subscribe(m, "$share/workers/p5/jobs")
for i in range(10):
    plain.publish("p5/jobs", f"job-{i}", qos=1)
    rc = plain.acks.get(timeout=WAIT)
    assert not rc.is_failure and rc.value != 0x10, rc
got = []
for m in members:
    mine = []
    while True:
        try:
            mine.append(m.got.get(timeout=0.5).payload)
        except queue.Empty:
            break
    assert mine, "every member gets a share"
    got += mine
assert sorted(got) == sorted(f"job-{i}".encode() for i in range(10)), got
for m in members:
    stop(m)
print("shared ok", len(got))

# No Local: the client's own message is not forwarded to it [MQTT-3.8.3-3].
subscribe(plain, "p5/chat", noLocal=True)
plain.publish("p5/chat", b"mine", qos=1)
plain.acks.get(timeout=WAIT)
nothing(plain, 0.3)
other = client("p5-other")
connect(other)
other.publish("p5/chat", b"theirs", qos=1)
other.acks.get(timeout=WAIT)
assert plain.got.get(timeout=WAIT).payload == b"theirs"
stop(other)
print("no local ok")

# A will with properties and a Will Delay Interval of 1 s [MQTT-3.1.3-9]: published a
# second after the connection dropped, with its Content Type and User Property.
subscribe(plain, "p5/will/#")
leaving = client("p5-leaving")
will = Properties(PacketTypes.WILLMESSAGE)
will.WillDelayInterval = 1
will.ContentType = "text/plain"
will.UserProperty = ("why", "dropped")
leaving.will_set("p5/will/leaving", b"gone", qos=1, properties=will)
connect(leaving, SessionExpiryInterval=60)
leaving.loop_stop()
dropped = time.monotonic()
leaving.socket().close()
nothing(plain, 0.5)
m = plain.got.get(timeout=WAIT)
waited = time.monotonic() - dropped
assert m.topic == "p5/will/leaving" and m.payload == b"gone", m
assert waited >= 0.9, waited
assert m.properties.ContentType == "text/plain", m.properties
assert ("why", "dropped") in m.properties.UserProperty, m.properties
print(f"will delay ok ({waited:.1f} s)")

stop(plain)
print("mqtt5 scenarios passed")
