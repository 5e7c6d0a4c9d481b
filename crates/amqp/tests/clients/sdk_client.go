// The Go cloud SDK's conversation, spoken by the Go AMQP 0-9-1 client package that SDK
// wraps (github.com/streadway/amqp) against mqgate-amqp's test server (tests/interop.rs). Like the SDK: an amqp:// URI with the escaped password and virtual
// host MQTT, heartbeat 10 s, locale en_US, signKey among the client properties; a producer
// connection with 16 confirm-mode channels used in turn; a consumer connection with one
// channel and 32-hex consumer tags. Prints one line per finding, in the format all the
// client scripts share.
//
//	go run sdk_client.go PORT sdk|badpass|broker
//
// `broker` is the conversation against the mqgate broker itself (the broker's
// tests/amqp_sdk_clients.rs): sends to devices, then consumes device messages and status
// notices until three messages and one notice arrived.
package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/streadway/amqp"
)

func out(format string, args ...interface{}) {
	fmt.Printf(format+"\n", args...)
}

// 32 hex digits, as the SDK's ids and consumer tags (a UUID without its dashes).
func hex32() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

type sender struct {
	ch       *amqp.Channel
	confirms chan amqp.Confirmation
	returns  chan amqp.Return
}

func main() {
	port, mode := os.Args[1], os.Args[2]
	ts := strconv.FormatInt(time.Now().UnixNano()/1000000, 10)
	secret := "SK-secret"
	if mode == "badpass" {
		secret = "wrong-secret"
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(ts))
	user := base64.StdEncoding.EncodeToString([]byte("0:post-cn-test:AK-id"))
	pass := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	uri := "amqp://" + user + ":" + url.QueryEscape(pass) + "@127.0.0.1:" + port + "/MQTT"
	config := amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: amqp.Table{"signKey": ts},
	}

	if mode == "badpass" {
		c, err := amqp.DialConfig(uri, config)
		if err == nil {
			c.Close()
			out("login accepted")
		} else {
			out("login refused %s", strings.ReplaceAll(err.Error(), " ", "_"))
		}
		return
	}

	producer, err := amqp.DialConfig(uri, config)
	if err != nil {
		out("dial failed %v", err)
		os.Exit(1)
	}
	out("connected")
	var senders []sender
	for i := 0; i < 16; i++ {
		ch, err := producer.Channel()
		if err != nil {
			out("channel failed %v", err)
			os.Exit(1)
		}
		if err := ch.Confirm(false); err != nil {
			out("confirm failed %v", err)
			os.Exit(1)
		}
		senders = append(senders, sender{
			ch:       ch,
			confirms: ch.NotifyPublish(make(chan amqp.Confirmation, 1)),
			returns:  ch.NotifyReturn(make(chan amqp.Return, 1)),
		})
	}
	next := 0
	send := func(topic string, body []byte) (bool, bool) {
		s := senders[next%len(senders)]
		next++
		err := s.ch.Publish(topic, topic, true, false, amqp.Publishing{
			Headers:      amqp.Table{},
			MessageId:    hex32(),
			Body:         body,
			DeliveryMode: amqp.Persistent,
		})
		if err != nil {
			return false, false
		}
		returned := false
		for {
			select {
			case <-s.returns:
				returned = true
			case c := <-s.confirms:
				return c.Ack, returned
			case <-time.After(5 * time.Second):
				return false, returned
			}
		}
	}
	if mode == "broker" {
		againstTheBroker(uri, config, producer, send)
		return
	}
	if ok, _ := send("parent/sub/x", []byte("hello")); ok {
		out("confirm ack")
	}
	if ok, _ := send("parent/nack", []byte("refuse me")); !ok {
		out("confirm nack")
	}
	if ok, returned := send("parent/unroutable", []byte("lost")); ok && returned {
		out("confirm returned")
	}
	big := bigBody()
	if ok, _ := send("parent/big", big); ok {
		out("confirm big")
	}

	consumer, sub := openConsumer(uri, config)
	tag := hex32()
	deliveries, err := sub.Consume("parent", tag, false, false, false, false, nil)
	if err != nil {
		out("consume failed %v", err)
		os.Exit(1)
	}
	out("consuming %s", tag)
	statuses := consumeStatus(sub)
	got, status := receive(deliveries, statuses, 5)
	out("received %d %d", got, status)

	side, _ := producer.Channel()
	if _, err := side.QueueDeclare("anything", false, false, false, false, nil); err != nil {
		if e, ok := err.(*amqp.Error); ok {
			out("declare refused %d", e.Code)
		} else {
			out("declare failed %v", err)
		}
	} else {
		out("declare accepted")
	}
	if ok, _ := send("parent/after", []byte("still open")); ok {
		out("still open")
	}
	consumer.Close()
	producer.Close()
	out("closed")
}

func againstTheBroker(uri string, config amqp.Config, producer *amqp.Connection, send func(string, []byte) (bool, bool)) {
	for _, body := range []string{"go-one", "go-two"} {
		if ok, _ := send("parent/sub/x", []byte(body)); ok {
			out("confirm ack %s", body)
		} else {
			out("confirm nack %s", body)
		}
	}
	big := bigBody()
	if ok, _ := send("parent/big", big); ok {
		out("confirm big")
	} else {
		out("confirm big failed")
	}
	consumer, sub := openConsumer(uri, config)
	deliveries, err := sub.Consume("parent", hex32(), false, false, false, false, nil)
	if err != nil {
		out("consume failed %v", err)
		os.Exit(1)
	}
	statuses := consumeStatus(sub)
	out("consuming")
	got, status := receive(deliveries, statuses, 3)
	out("received %d %d", got, status)
	consumer.Close()
	producer.Close()
	out("closed")
}

// 300 KB: more than a frame (the client splits it, the server joins it).
func bigBody() []byte {
	big := make([]byte, 256*1200)
	for i := range big {
		big[i] = byte(i)
	}
	return big
}

// The consumer connection, with one channel and a prefetch of 2.
func openConsumer(uri string, config amqp.Config) (*amqp.Connection, *amqp.Channel) {
	consumer, err := amqp.DialConfig(uri, config)
	if err != nil {
		out("dial failed %v", err)
		os.Exit(1)
	}
	sub, _ := consumer.Channel()
	if err := sub.Qos(2, 0, false); err != nil {
		out("qos failed %v", err)
	}
	return consumer, sub
}

// As the SDK subscribes to the status notices of GID_backend.
func consumeStatus(sub *amqp.Channel) <-chan amqp.Delivery {
	statuses, err := sub.Consume("STATUS", hex32(), false, false, false, false, amqp.Table{"GROUP_ID": "GID_backend"})
	if err != nil {
		out("consume failed %v", err)
		os.Exit(1)
	}
	return statuses
}

// Prints and acks device messages (a message `msg-3` is nacked without requeue) and status
// notices until `want` messages and one notice arrived, or 20 s passed.
func receive(deliveries, statuses <-chan amqp.Delivery, want int) (int, int) {
	got, status := 0, 0
	deadline := time.After(20 * time.Second)
	for got < want || status < 1 {
		select {
		case d := <-deliveries:
			body := string(d.Body)
			out("msg %d %t %s %v %v %v %s", d.DeliveryTag, d.Redelivered, d.MessageId,
				d.Headers["mqttParentTopic"], d.Headers["mqttSecondTopic"], d.Headers["clientId"], body)
			got++
			if body == "msg-3" {
				d.Nack(false, false)
			} else {
				d.Ack(false)
			}
		case d := <-statuses:
			out("status %s", d.Body)
			status++
			d.Ack(false)
		case <-deadline:
			return got, status
		}
	}
	return got, status
}
