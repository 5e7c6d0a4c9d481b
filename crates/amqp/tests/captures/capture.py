"""Records the cloud SDK's conversation with a real RabbitMQ, both directions, for
tests/rabbitmq_capture.rs. Not run by the tests: the recordings are kept in this folder.

How rabbitmq-client.bin and rabbitmq-server.bin were made (Debian's rabbitmq-server 3.10.8,
pika 1.4.4):

    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server &
    rabbitmqctl add_vhost MQTT
    rabbitmqctl add_user MDpwb3N0LWNuLXRlc3Q6QUstaWQ= XvZ955fbG+ZecFVOdKiYrPOPezc=
    rabbitmqctl set_permissions -p MQTT MDpwb3N0LWNuLXRlc3Q6QUstaWQ= '.*' '.*' '.*'
    python3 capture.py 5672 .

The user name and password are the SDK's for instance post-cn-test, AccessKey AK-id, secret
SK-secret and signKey 1700000000123, so the recorded client stream also logs in to
mqgate-amqp's SdkAuthenticator. Setup (an exchange per topic bound to the queue `parent`,
three device messages waiting in it) goes over a separate, unrecorded connection; the
recorded one does what the SDKs do: confirm mode, publishes with headers, a consumer with
prefetch 2 that acks and nacks, the STATUS-style consumer arguments, a clean close.
"""
import base64
import socket
import sys
import threading
import time

import pika

port, out_dir = int(sys.argv[1]), sys.argv[2]
USER, PASSWORD, SIGN_KEY = "MDpwb3N0LWNuLXRlc3Q6QUstaWQ=", "XvZ955fbG+ZecFVOdKiYrPOPezc=", "1700000000123"


def params(p):
    return pika.ConnectionParameters(
        host="127.0.0.1", port=p, virtual_host="MQTT",
        credentials=pika.PlainCredentials(USER, PASSWORD),
        heartbeat=10, locale="en_US", client_properties={"signKey": SIGN_KEY},
    )


# --- setup, not recorded
setup = pika.BlockingConnection(params(port))
ch = setup.channel()
ch.queue_declare("parent")
ch.queue_purge("parent")
for topic in ("parent/sub/x", "parent/nack"):
    ch.exchange_declare(topic, "fanout")
    ch.queue_bind("parent", topic)
for n in range(1, 4):
    ch.basic_publish("", "parent", f"msg-{n}".encode(), pika.BasicProperties(
        message_id=f"{n:032x}", delivery_mode=2,
        headers={"mqttParentTopic": "parent", "mqttSecondTopic": "/sub/dev", "clientId": "GID_a@@@dev1"},
    ))
setup.close()

# --- a recording proxy
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
proxy_port = listener.getsockname()[1]
streams = {"client": bytearray(), "server": bytearray()}


def pump(src, dst, name):
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            break
        if not data:
            break
        streams[name].extend(data)
        dst.sendall(data)
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve():
    client, _ = listener.accept()
    upstream = socket.create_connection(("127.0.0.1", port))
    a = threading.Thread(target=pump, args=(client, upstream, "client"))
    b = threading.Thread(target=pump, args=(upstream, client, "server"))
    a.start(); b.start(); a.join(); b.join()


proxy = threading.Thread(target=serve)
proxy.start()

# --- the recorded conversation
conn = pika.BlockingConnection(params(proxy_port))
pub = conn.channel()
pub.confirm_delivery()
pub.basic_publish("parent/sub/x", "parent/sub/x", b"hello", pika.BasicProperties(
    message_id="0123456789ABCDEF0123456789ABCDEF", delivery_mode=2,
    headers={"seqId": 1 << 40, "small": 7, "flag": True, "text": "t", "raw": b"\x00\x01",
             "nested": {"list": [1, "two", None]}},
), mandatory=True)
sub = conn.channel()
sub.basic_qos(prefetch_count=2)
got = []


def on_message(ch, method, properties, body):
    got.append(body)
    if body == b"msg-2":
        ch.basic_nack(method.delivery_tag, multiple=False, requeue=False)
    else:
        ch.basic_ack(method.delivery_tag)


sub.basic_consume("parent", on_message, auto_ack=False, consumer_tag="0123456789abcdef0123456789abcdef",
                  arguments={"GROUP_ID": "GID_backend"})
deadline = time.time() + 10
while len(got) < 4 and time.time() < deadline:
    conn.process_data_events(time_limit=0.2)
conn.close()
proxy.join()
for name, data in streams.items():
    with open(f"{out_dir}/rabbitmq-{name}.bin", "wb") as f:
        f.write(data)
print("received", len(got), "client bytes", len(streams["client"]), "server bytes", len(streams["server"]))
