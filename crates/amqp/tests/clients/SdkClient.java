// The Java cloud SDK's conversation, spoken by RabbitMQ's Java client (the client that SDK
// wraps) against mqgate-amqp's test server (tests/interop.rs). Like the SDK: one connection
// to send (confirm mode, a listener for acks and nacks), another to consume with one channel
// and server-chosen consumer tags; client properties hold only signKey; virtual host MQTT.
// Prints one line per finding, in the format all the client scripts share.
//
//     java SdkClient PORT sdk|badpass|broker
//
// `broker` is the conversation against the mqgate broker itself (the broker's
// tests/amqp_sdk_clients.rs): sends to devices, then consumes device messages and status
// notices until three messages and one notice arrived.

import com.rabbitmq.client.*;

import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.*;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class SdkClient {
    static void out(String s) {
        System.out.println(s);
        System.out.flush();
    }

    static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    // The client's connection threads would keep the JVM alive after a failure: exit
    // explicitly, so the test sees the failure at once.
    public static void main(String[] args) {
        int code = 0;
        try {
            run(args);
        } catch (Throwable t) {
            t.printStackTrace();
            code = 1;
        }
        System.exit(code);
    }

    static void run(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        String mode = args[1];
        String ts = String.valueOf(System.currentTimeMillis());
        String secret = mode.equals("badpass") ? "wrong-secret" : "SK-secret";
        Mac mac = Mac.getInstance("HmacSHA1");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA1"));

        ConnectionFactory f = new ConnectionFactory();
        f.setHost("127.0.0.1");
        f.setPort(port);
        f.setVirtualHost("MQTT");
        f.setUsername(b64("0:post-cn-test:AK-id".getBytes(StandardCharsets.UTF_8)));
        f.setPassword(b64(mac.doFinal(ts.getBytes(StandardCharsets.UTF_8))));
        Map<String, Object> props = new HashMap<>();
        props.put("signKey", ts);
        f.setClientProperties(props);
        f.setAutomaticRecoveryEnabled(false);
        f.setConnectionTimeout(5000);
        f.setHandshakeTimeout(5000);

        if (mode.equals("badpass")) {
            try {
                f.newConnection().close();
                out("login accepted");
            } catch (Exception e) {
                out("login refused " + e.getClass().getSimpleName());
            }
            return;
        }

        Connection producer = f.newConnection();
        out("connected");
        Channel pub = producer.createChannel();
        pub.confirmSelect();
        ConcurrentHashMap<Long, CompletableFuture<Boolean>> pending = new ConcurrentHashMap<>();
        pub.addConfirmListener(new ConfirmListener() {
            public void handleAck(long tag, boolean multiple) {
                complete(tag, multiple, true);
            }

            public void handleNack(long tag, boolean multiple) {
                complete(tag, multiple, false);
            }

            void complete(long tag, boolean multiple, boolean ok) {
                for (Long t : new ArrayList<>(pending.keySet())) {
                    if (t == tag || (multiple && t < tag)) {
                        pending.remove(t).complete(ok);
                    }
                }
            }
        });
        if (mode.equals("broker")) {
            againstTheBroker(f, producer, pub, pending);
            return;
        }
        List<String> returned = Collections.synchronizedList(new ArrayList<>());
        pub.addReturnListener((code, text, exchange, key, p, body) -> returned.add(exchange + " " + code));

        String[][] sends = {
            {"parent/sub/x", "hello", "confirm ack", "confirm nack-unexpected"},
            {"parent/nack", "refuse me", "confirm ack-unexpected", "confirm nack"},
            {"parent/unroutable", "lost", "confirm returned", "confirm nack-unexpected"},
        };
        for (String[] s : sends) {
            boolean ok = send(pub, pending, s[0], s[1].getBytes(StandardCharsets.UTF_8));
            if (s[0].equals("parent/unroutable")) {
                ok = ok && returned.contains("parent/unroutable 312");
            }
            out(ok ? s[2] : s[3]);
        }
        byte[] big = bigBody();
        out(send(pub, pending, "parent/big", big) ? "confirm big" : "confirm big failed");

        Connection consumer = f.newConnection();
        Channel sub = consumer.createChannel();
        sub.basicQos(2);
        List<String> got = Collections.synchronizedList(new ArrayList<>());
        consumeParent(sub, got);
        List<String> status = Collections.synchronizedList(new ArrayList<>());
        String statusTag = consumeStatus(sub, status);
        out("status tag " + statusTag);
        long deadline = System.currentTimeMillis() + 20000;
        while ((got.size() < 5 || status.isEmpty()) && System.currentTimeMillis() < deadline) {
            Thread.sleep(50);
        }
        out("received " + got.size() + " " + status.size());

        Channel side = producer.createChannel();
        try {
            side.queueDeclare("anything", false, false, false, null);
            out("declare accepted");
        } catch (java.io.IOException e) {
            ShutdownSignalException sse = (ShutdownSignalException) e.getCause();
            out("declare refused " + ((AMQP.Channel.Close) sse.getReason()).getReplyCode());
        }
        out(send(pub, pending, "parent/after", "still open".getBytes(StandardCharsets.UTF_8))
                ? "still open" : "closed early");
        consumer.close();
        producer.close();
        out("closed");
    }

    // 300 KB: more than a frame (the client splits it, the server joins it).
    static byte[] bigBody() {
        byte[] big = new byte[256 * 1200];
        for (int i = 0; i < big.length; i++) {
            big[i] = (byte) i;
        }
        return big;
    }

    // As the SDK subscribes to the device messages of `parent`: prints each (with its
    // delivery tag, redelivered flag, message id and the SDK's headers) and acks it, except
    // a message `msg-3`, which it nacks without requeue.
    static void consumeParent(Channel sub, List<String> got) throws java.io.IOException {
        sub.basicConsume("parent", false, new DefaultConsumer(sub) {
            @Override
            public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties p, byte[] body)
                    throws java.io.IOException {
                Map<String, Object> h = p.getHeaders();
                String text = new String(body, StandardCharsets.UTF_8);
                out("msg " + env.getDeliveryTag() + " " + env.isRedeliver() + " " + p.getMessageId()
                        + " " + h.get("mqttParentTopic") + " " + h.get("mqttSecondTopic")
                        + " " + h.get("clientId") + " " + text);
                got.add(text);
                if (text.equals("msg-3")) {
                    getChannel().basicNack(env.getDeliveryTag(), false, false);
                } else {
                    getChannel().basicAck(env.getDeliveryTag(), false);
                }
            }
        });
    }

    // As the SDK subscribes to the status notices of GID_backend; prints and acks each.
    static String consumeStatus(Channel sub, List<String> status) throws java.io.IOException {
        Map<String, Object> statusArgs = new HashMap<>();
        statusArgs.put("GROUP_ID", "GID_backend");
        return sub.basicConsume("STATUS", false, statusArgs, new DefaultConsumer(sub) {
            @Override
            public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties p, byte[] body)
                    throws java.io.IOException {
                out("status " + new String(body, StandardCharsets.UTF_8));
                status.add("x");
                getChannel().basicAck(env.getDeliveryTag(), false);
            }
        });
    }

    static void againstTheBroker(ConnectionFactory f, Connection producer, Channel pub,
            Map<Long, CompletableFuture<Boolean>> pending) throws Exception {
        for (String body : new String[] {"java-one", "java-two"}) {
            boolean ok = send(pub, pending, "parent/sub/x", body.getBytes(StandardCharsets.UTF_8));
            out((ok ? "confirm ack " : "confirm nack ") + body);
        }
        byte[] big = bigBody();
        out(send(pub, pending, "parent/big", big) ? "confirm big" : "confirm big failed");
        Connection consumer = f.newConnection();
        Channel sub = consumer.createChannel();
        sub.basicQos(2);
        List<String> got = Collections.synchronizedList(new ArrayList<>());
        List<String> status = Collections.synchronizedList(new ArrayList<>());
        consumeParent(sub, got);
        consumeStatus(sub, status);
        out("consuming");
        long deadline = System.currentTimeMillis() + 20000;
        while ((got.size() < 3 || status.isEmpty()) && System.currentTimeMillis() < deadline) {
            Thread.sleep(20);
        }
        out("received " + got.size() + " " + status.size());
        consumer.close();
        producer.close();
        out("closed");
    }

    // As the SDK sends: the next publish number as the seqId header, a 32-hex message id,
    // mandatory; then up to 5 seconds for the confirm.
    static boolean send(Channel ch, Map<Long, CompletableFuture<Boolean>> pending, String topic, byte[] body)
            throws Exception {
        CompletableFuture<Boolean> done = new CompletableFuture<>();
        synchronized (ch) {
            long seq = ch.getNextPublishSeqNo();
            Map<String, Object> headers = new HashMap<>();
            headers.put("seqId", seq);
            String id = UUID.randomUUID().toString().replace("-", "").toUpperCase();
            AMQP.BasicProperties p = new AMQP.BasicProperties.Builder().headers(headers).messageId(id).build();
            pending.put(seq, done);
            ch.basicPublish(topic, topic, true, p, body);
        }
        try {
            return done.get(5, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            return false;
        }
    }
}
