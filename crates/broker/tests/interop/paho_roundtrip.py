# Round trips with Python paho-mqtt over TCP and WebSocket, and offline delivery to a
# persistent paho client. Usage: python3 paho_roundtrip.py TCP_PORT WS_PORT (run by tests/interop.rs).
# Every wait is for the event itself (SUBACK, message, disconnect), bounded by WAIT seconds.
import sys, threading, queue
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
PORT, WSPORT = int(sys.argv[1]), int(sys.argv[2])
WAIT = 5
def client(cid, transport="tcp", clean=True):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, transport=transport, clean_session=clean)
    if transport == "websockets": c.ws_set_options(path="/mqtt")
    c.suback, c.gone, c.got = threading.Event(), threading.Event(), queue.Queue()
    c.on_subscribe = lambda cl, u, mid, rcs, p: cl.suback.set()
    c.on_disconnect = lambda cl, u, f, rc, p: cl.gone.set()
    c.on_message = lambda cl, u, m: cl.got.put(m.payload)
    return c
def subscribe(c, topic):
    c.subscribe(topic, 1); assert c.suback.wait(WAIT), topic
def stop(c):
    c.disconnect(); assert c.gone.wait(WAIT); c.loop_stop()
def rt(transport, port):
    sub = client(f"paho-sub-{transport}", transport)
    sub.connect("127.0.0.1", port); sub.loop_start(); subscribe(sub, "p/#")
    pub = client(f"paho-pub-{transport}", transport); pub.connect("127.0.0.1", port); pub.loop_start()
    pub.publish("p/x", b"hi-" + transport.encode(), qos=1).wait_for_publish(WAIT)
    got = sub.got.get(timeout=WAIT)
    print(transport, got)
    for c in (sub, pub): stop(c)
rt("tcp", PORT); rt("websockets", WSPORT)
c = client("paho-offline", clean=False); c.connect("127.0.0.1", PORT); c.loop_start(); subscribe(c, "off/#")
stop(c)
p = client("paho-offline-pub"); p.connect("127.0.0.1", PORT); p.loop_start()
for i in range(3): p.publish("off/x", f"m{i}", qos=1).wait_for_publish(WAIT)
stop(p)
c = client("paho-offline", clean=False)
c.connect("127.0.0.1", PORT); c.loop_start()
got = [c.got.get(timeout=WAIT) for _ in range(3)]
stop(c)
assert c.got.empty(), "more than the three queued messages"
print("offline", got); assert got == [b"m0", b"m1", b"m2"], got
