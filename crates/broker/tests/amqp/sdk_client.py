"""The cloud SDK's calls, spoken by pika (a Python AMQP 0-9-1 client) against the mqgate
broker's AMQP endpoint (tests/amqp_endpoint.rs). One line per finding on stdout.

    python3 sdk_client.py PORT INSTANCE AK SECRET login [VHOST]
    python3 sdk_client.py PORT INSTANCE AK SECRET send TOPIC PAYLOAD...
    python3 sdk_client.py PORT INSTANCE AK SECRET consume QUEUE N ack|hold [GROUP_ID]
    python3 sdk_client.py PORT INSTANCE AK SECRET idle SECONDS

With MQGATE_AMQP_CA set to a CA certificate (PEM) the connection uses TLS (AMQPS), checking
the broker's certificate against that CA for the name `localhost`.

`consume ... hold` prints N deliveries without acknowledging them, then waits (to be
killed); `ack` acknowledges each and exits after N. With GROUP_ID the queue is STATUS.
"""
import base64
import hashlib
import hmac
import os
import ssl
import sys
import time
import uuid

import pika

port, instance, ak, secret, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
args = sys.argv[6:]


def out(*words):
    print(*words, flush=True)


def tls_options():
    ca = os.environ.get("MQGATE_AMQP_CA")
    if not ca:
        return None
    return pika.SSLOptions(ssl.create_default_context(cafile=ca), "localhost")


def params(vhost="MQTT", heartbeat=10):
    ts = str(int(time.time() * 1000))
    username = base64.b64encode(f"0:{instance}:{ak}".encode()).decode()
    password = base64.b64encode(hmac.new(secret.encode(), ts.encode(), hashlib.sha1).digest()).decode()
    return pika.ConnectionParameters(
        host="127.0.0.1", port=port, virtual_host=vhost,
        credentials=pika.PlainCredentials(username, password), heartbeat=heartbeat,
        client_properties={"signKey": ts}, connection_attempts=1, socket_timeout=5,
        blocked_connection_timeout=10, ssl_options=tls_options(),
    )


if mode == "login":
    try:
        conn = pika.BlockingConnection(params(args[0] if args else "MQTT"))
        out("accepted")
        conn.close()
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError) as e:
        out("refused 403", type(e).__name__)
    except pika.exceptions.ConnectionClosedByBroker as e:
        out("refused", e.reply_code)
    except pika.exceptions.AMQPConnectionError as e:
        # pika wraps a close during the handshake; its first argument is the close.
        inner = e.args[0] if e.args else None
        code = getattr(inner, "reply_code", None)
        out("refused", code if code is not None else type(e).__name__)
    sys.exit(0)

if mode == "idle":
    conn = pika.BlockingConnection(params(heartbeat=int(args[0])))
    out("connected")
    conn.process_data_events(time_limit=float(args[1]))
    out("still open", conn.is_open)
    conn.close()
    sys.exit(0)

conn = pika.BlockingConnection(params())
out("connected")

if mode == "send":
    ch = conn.channel()
    ch.confirm_delivery()
    topic = args[0]
    for payload in args[1:]:
        props = pika.BasicProperties(message_id=uuid.uuid4().hex, delivery_mode=2)
        try:
            ch.basic_publish(topic, topic, payload.encode(), props, mandatory=False)
            out("ack", payload)
        except pika.exceptions.NackError:
            out("nack", payload)
    conn.close()
    sys.exit(0)

if mode == "consume":
    queue, n, how = args[0], int(args[1]), args[2]
    arguments = {"GROUP_ID": args[3]} if len(args) > 3 else None
    ch = conn.channel()
    ch.basic_qos(prefetch_count=max(n, 1))
    got = []

    def on_message(c, method, properties, body):
        h = properties.headers or {}
        out("msg", str(method.redelivered).lower(), properties.message_id,
            h.get("mqttParentTopic"), h.get("mqttSecondTopic"), h.get("clientId"), body.decode())
        got.append(body)
        if how == "ack":
            c.basic_ack(method.delivery_tag)

    ch.basic_consume(queue, on_message, auto_ack=False, arguments=arguments)
    out("consuming")
    # Until n arrived, or (acknowledging) nothing came for 5 s, or 30 s passed.
    deadline = time.time() + 30
    last = time.time()
    while len(got) < n and time.time() < deadline:
        before = len(got)
        conn.process_data_events(time_limit=0.1)
        if len(got) > before:
            last = time.time()
        if how == "ack" and time.time() - last > 5:
            break
    out("received", len(got))
    if how == "hold":
        while time.time() < deadline:
            conn.process_data_events(time_limit=0.2)
    conn.close()
    sys.exit(0)
