# Round trips with Python paho-mqtt over TCP and WebSocket, and offline delivery to a
# persistent paho client. Usage: python3 paho_roundtrip.py TCP_PORT WS_PORT (run by tests/interop.rs).
import sys, time, threading
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
PORT, WSPORT = int(sys.argv[1]), int(sys.argv[2])
def client(cid, transport="tcp", clean=True):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, transport=transport, clean_session=clean)
    if transport == "websockets": c.ws_set_options(path="/mqtt")
    return c
def rt(transport, port):
    got = threading.Event(); box = {}
    def on_message(c, u, m): box['m'] = m.payload; got.set()
    sub = client(f"paho-sub-{transport}", transport); sub.on_message = on_message
    sub.connect("127.0.0.1", port); sub.loop_start(); sub.subscribe("p/#", 1); time.sleep(0.5)
    pub = client(f"paho-pub-{transport}", transport); pub.connect("127.0.0.1", port); pub.loop_start()
    pub.publish("p/x", b"hi-" + transport.encode(), qos=1).wait_for_publish(5)
    assert got.wait(5), transport
    print(transport, box['m'])
    for c in (sub, pub): c.disconnect(); c.loop_stop()
rt("tcp", PORT); rt("websockets", WSPORT)
c = client("paho-offline", clean=False); c.connect("127.0.0.1", PORT); c.loop_start(); c.subscribe("off/#", 1)
time.sleep(0.5); c.disconnect(); c.loop_stop(); time.sleep(0.3)
p = client("paho-offline-pub"); p.connect("127.0.0.1", PORT); p.loop_start()
for i in range(3): p.publish("off/x", f"m{i}", qos=1).wait_for_publish(5)
p.disconnect(); p.loop_stop()
got = []
c = client("paho-offline", clean=False); c.on_message = lambda cl, u, m: got.append(m.payload)
c.connect("127.0.0.1", PORT); c.loop_start(); time.sleep(1.0); c.disconnect(); c.loop_stop()
print("offline", got); assert got == [b"m0", b"m1", b"m2"], got
