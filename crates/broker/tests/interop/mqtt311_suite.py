# The scenarios of a stock MQTT 3.1.1 interoperability suite, written for mqgate with Python
# paho-mqtt: the client ids, topics and wildcards such a suite uses, its refused subscription
# (test/nosubscribe), wills, retained messages, QoS 0/1/2, offline queueing, redelivery on
# reconnect, $-topics, an empty client id and keep-alive expiry. Anonymous throughout.
# Every wait is for an event, bounded by WAIT seconds; nothing sleeps.
# Usage: python3 mqtt311_suite.py PORT (run by tests/interop.rs against tests/interop/paho_suite.toml).
import queue, socket, struct, sys
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HOST, PORT = "127.0.0.1", int(sys.argv[1])
WAIT = 5
TOPICS = ("TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA")
WILD = ("TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#")
NOSUB = "test/nosubscribe"


class Peer:
    """A paho client whose CONNACKs, SUBACKs and messages arrive on queues."""

    def __init__(self, cid, clean=True, keepalive=60, will=None):
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=clean)
        self.connacks, self.subacks, self.msgs = queue.Queue(), queue.Queue(), queue.Queue()
        self.c.on_connect = lambda c, u, f, rc, p: self.connacks.put((f.session_present, rc.value))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put([rc.value for rc in rcs])
        self.c.on_message = lambda c, u, m: self.msgs.put((m.topic, m.payload, m.qos, m.retain, m.dup))
        if will:
            self.c.will_set(will[0], will[1], qos=1)
        self.c.connect(HOST, PORT, keepalive=keepalive)
        self.c.loop_start()
        present, rc = self.connacks.get(timeout=WAIT)
        assert rc == 0, (cid, rc)
        self.session_present = present

    def sub(self, *filters):
        self.c.subscribe(list(filters))
        return self.subacks.get(timeout=WAIT)

    def pub(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(WAIT)
            assert info.is_published(), topic

    def take(self, n):
        return [self.msgs.get(timeout=WAIT) for _ in range(n)]

    def drain(self, marker_topic):
        """Everything received before a QoS 1 marker this client sends itself and receives
        (one connection's messages arrive in order): a bounded way to see nothing else came."""
        self.pub(marker_topic, b"marker", qos=1)
        seen = []
        while True:
            m = self.msgs.get(timeout=WAIT)
            if m[1] == b"marker":
                return seen
            seen.append(m)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def drop(self):
        """Ends the connection without DISCONNECT (an abnormal close)."""
        self.c.loop_stop()
        self.c.socket().close()


def raw_connect(cid=b"raw", clean=True, name=b"MQTT", level=4):
    flags = 0x02 if clean else 0x00
    body = struct.pack("!H", len(name)) + name + bytes([level, flags]) + struct.pack("!H", 30)
    body += struct.pack("!H", len(cid)) + cid
    return bytes([0x10, len(body)]) + body


def raw_exchange(*packets):
    """Sends `packets` on one socket; returns everything read until the broker closes."""
    s = socket.create_connection((HOST, PORT), timeout=WAIT)
    for p in packets:
        s.sendall(p)
    got = b""
    try:
        while True:
            chunk = s.recv(1024)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    s.close()
    return got


def step(name):
    print("==", name, flush=True)


step("cleanup: 'clean retained' subscribes to # and clears what is retained")
cleaner = Peer("clean retained")
assert cleaner.sub(("#", 0)) == [0]
for topic, *_ in cleaner.drain("TopicA/B"):
    cleaner.pub(topic, b"", retain=True)
cleaner.close()

step("basic: QoS 0, 1 and 2 to itself; second CONNECT and a wrong protocol name close")
a = Peer("myclientid")
a.close()
a = Peer("myclientid")
assert a.sub((TOPICS[0], 2)) == [2]
for qos in (0, 1, 2):
    a.pub(TOPICS[0], f"qos {qos}".encode(), qos)
assert sorted(m[1] for m in a.take(3)) == [b"qos 0", b"qos 1", b"qos 2"]
a.close()
# A second CONNECT on one connection is a protocol violation: CONNACK 0, then the close.
assert raw_exchange(raw_connect(b"myclientid"), raw_connect(b"myclientid")) == b"\x20\x02\x00\x00"
# An unknown protocol name closes without CONNACK; an unknown level gets CONNACK 1 first
# (level 5 is MQTT 5, which the broker serves).
assert raw_exchange(raw_connect(name=b"hj")) == b""
assert raw_exchange(raw_connect(level=6)) == b"\x20\x02\x00\x01"

step("retained messages: set at QoS 0, 1, 2, received through +/+, cleared")
a = Peer("myclientid")
for qos, topic in enumerate(TOPICS[1:4]):
    a.pub(topic, f"qos {qos}".encode(), qos, retain=True)
assert a.sub((WILD[5], 2)) == [2]
got = a.take(3)
assert sorted(m[0] for m in got) == sorted(TOPICS[1:4]) and all(m[3] for m in got), got
a.close()
a = Peer("myclientid")
for qos, topic in enumerate(TOPICS[1:4]):
    a.pub(topic, b"", qos, retain=True)
assert a.sub((WILD[5], 2)) == [2]
assert a.drain("TopicA/marker") == []
a.close()

step("offline queueing: a persistent session gets QoS 1 and 2 sent while it was away")
a = Peer("myclientid", clean=False)
assert a.sub((WILD[5], 2)) == [2]
a.close()
b = Peer("myclientid2")
for qos, topic in enumerate(TOPICS[1:4]):
    b.pub(topic, f"qos {qos}".encode(), qos)
b.close()
a = Peer("myclientid", clean=False)
assert a.session_present
queued = a.drain("TopicA/marker")
# A QoS 2 message reaches the application at PUBREL, which can come after the QoS 1 marker
# (the marker is published while the queued QoS 2 exchange is still under way): wait for it.
while b"qos 2" not in {m[1] for m in queued}:
    queued.append(a.msgs.get(timeout=WAIT))
assert len(queued) in (2, 3), queued
assert {m[1] for m in queued} >= {b"qos 1", b"qos 2"}, queued
print("QoS 0 queued for offline clients:", len(queued) == 3)
a.close()
Peer("myclientid").close()  # a clean session again

step("will: an abnormal close publishes the will")
a = Peer("myclientid", keepalive=2, will=(TOPICS[2], b"client not disconnected"))
b = Peer("myclientid2", clean=False)
assert b.sub((TOPICS[2], 2)) == [2]
a.drop()
will = b.take(1)[0]
assert will[:2] == (TOPICS[2], b"client not disconnected"), will
b.close()
Peer("myclientid2").close()

step("overlapping subscriptions: one message at the highest QoS, or one per subscription")
a = Peer("myclientid")
assert a.sub((WILD[6], 2), (WILD[0], 1)) == [2, 1]
a.pub(TOPICS[3], b"overlapping topic filters", 2)
got = a.drain("TopicA/marker")
assert sorted(m[2] for m in got) in ([2], [1, 2]), got
print("one message per overlapping subscription:", len(got) == 2)
a.close()

step("keep-alive: a client silent for 1.5 x its keep-alive is closed, its will published")
b = Peer("myclientid2")
assert b.sub((TOPICS[4], 2)) == [2]
a = Peer("myclientid", keepalive=1, will=(TOPICS[4], b"keepalive expiry"))
a.c.loop_stop()  # no more PINGREQs; the socket stays open
will = b.take(1)[0]
assert will[:2] == (TOPICS[4], b"keepalive expiry"), will
b.close()
a.c.socket().close()

step("redelivery on reconnect: unacknowledged QoS 1 and 2 come again")
b = Peer("myclientid2", clean=False)
assert b.sub((WILD[6], 2)) == [2]
b.c.loop_stop()  # reads nothing more: nothing gets acknowledged
a = Peer("myclientid")
a.pub(TOPICS[1], b"redeliver 1", 1)
a.pub(TOPICS[3], b"redeliver 2", 2)
a.close()
b.c.socket().close()
b = Peer("myclientid2", clean=False)
assert b.session_present
got = b.take(2)
assert sorted(m[1] for m in got) == [b"redeliver 1", b"redeliver 2"], got
b.close()
Peer("myclientid2").close()

step("subscribe failure: test/nosubscribe is refused with 0x80, the connection stays")
a = Peer("myclientid")
assert a.sub((NOSUB, 2)) == [0x80]
assert a.sub(("nosubscribe", 2)) == [0x80]  # what older versions of such suites use
assert a.sub((TOPICS[0], 1), (NOSUB, 2)) == [1, 0x80]
a.pub(TOPICS[0], b"still here", 1)
assert a.take(1)[0][1] == b"still here"
a.close()

step("$ topics: a filter starting with a wildcard does not match $TopicA/B")
b = Peer("myclientid2")
assert b.sub((WILD[5], 2)) == [2]
b.pub("$" + TOPICS[1], b"", 1)
assert b.drain("TopicA/marker") == []
b.close()

step("zero-length client id: refused (CONNACK 2) without a clean session, accepted with one")
assert raw_exchange(raw_connect(b"", clean=False)) == b"\x20\x02\x00\x02"
z = Peer("")
z.close()

print("suite passed")
