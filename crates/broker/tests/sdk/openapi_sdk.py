# Drives mqgate's HTTP API with the official SDK (alibabacloud-onsmqtt20200420==1.7.1) under
# both signature schemes, and checks the end-to-end cases with paho-mqtt clients.
# Usage: python3 openapi_sdk.py HTTP_PORT MQTT_PORT ACCESS_KEY_ID SECRET INSTANCE_ID
# Exits non-zero with a message naming the failed check. Run by tests/openapi_sdk.rs.
import base64, hashlib, hmac, sys, threading, time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from alibabacloud_onsmqtt20200420 import models as M
from alibabacloud_onsmqtt20200420.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils

HTTP, MQTT, AK, SECRET, INSTANCE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
WAIT = 5.0
checks = 0


def check(ok, what):
    global checks
    if not ok:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


def api(algorithm, secret=SECRET):
    config = open_api_models.Config(access_key_id=AK, access_key_secret=secret,
                                    endpoint=f"127.0.0.1:{HTTP}", protocol="http")
    if algorithm:
        config.signature_algorithm = algorithm
    return Client(config)


def refused(call, code, what):
    try:
        call()
    except ClientException as e:
        check(e.code == code, f"{what}: expected {code}, got {e.code} ({e.message})")
        return
    check(False, f"{what}: expected ClientException {code}, the call succeeded")


def sign(secret, client_id):
    return base64.b64encode(hmac.new(secret.encode(), client_id.encode(), hashlib.sha1).digest()).decode()


class Mqtt:
    """A paho client; `rc` is the CONNACK reason name once answered."""

    def __init__(self, client_id, username=None, password=None):
        self.client_id, self.got, self.rc = client_id, [], None
        self.answered, self.closed = threading.Event(), threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if username is not None:
            c.username_pw_set(username, password)
        c.on_connect = self.on_connect
        c.on_message = lambda _c, _u, m: self.got.append((m.topic, m.payload))
        c.on_disconnect = self.on_disconnect
        c.connect("127.0.0.1", MQTT, keepalive=30)
        c.loop_start()
        self.c = c
        check(self.answered.wait(WAIT), f"{client_id}: CONNACK in time")

    def on_connect(self, c, _u, _f, rc, _p):
        self.rc = str(rc)
        if rc.is_failure:
            c.disconnect()  # no automatic retry of a refused CONNECT
        self.answered.set()

    def on_disconnect(self, c, *_a):
        c.disconnect()  # no automatic reconnect after the broker closed us
        self.closed.set()

    def subscribe(self, topic):
        done = threading.Event()
        self.c.on_subscribe = lambda *_a: done.set()
        self.c.subscribe(topic, 1)
        check(done.wait(WAIT), f"{self.client_id}: SUBACK for {topic}")

    def publish(self, topic, payload):
        self.c.publish(topic, payload, qos=1).wait_for_publish(WAIT)

    def wait_for(self, n, what):
        for _ in range(int(WAIT / 0.05)):
            if len(self.got) >= n:
                return
            time.sleep(0.05)
        check(False, f"{self.client_id}: {what} (got {self.got})")

    def stop(self):
        self.c.disconnect()
        self.c.loop_stop()


def signed(client_id):
    return Mqtt(client_id, f"Signature|{AK}|{INSTANCE}", sign(SECRET, client_id))


def eventually(predicate, what):
    for _ in range(int(WAIT / 0.05)):
        if predicate():
            return
        time.sleep(0.05)
    check(False, what)


def run(scheme, algorithm):
    sdk = api(algorithm)
    group = f"GID_sdk{scheme}"
    sdk.create_group_id(M.CreateGroupIdRequest(instance_id=INSTANCE, group_id=group))
    listed = sdk.list_group_id(M.ListGroupIdRequest(instance_id=INSTANCE)).body
    check(listed.request_id, f"{scheme}: ListGroupId has a RequestId")
    mine = [g for g in listed.data if g.group_id == group]
    check(len(mine) == 1 and mine[0].instance_id == INSTANCE and mine[0].create_time > 0,
          f"{scheme}: ListGroupId shows {group}")
    refused(lambda: sdk.create_group_id(M.CreateGroupIdRequest(instance_id=INSTANCE, group_id=group)),
            "GroupId.AlreadyExists", f"{scheme}: creating a group twice")
    refused(lambda: sdk.query_session_by_client_id(M.QuerySessionByClientIdRequest(instance_id=INSTANCE)),
            "MissingParameter.ClientId", f"{scheme}: QuerySessionByClientId without ClientId")

    # Online status flips with the connection.
    cid = f"{group}@@@phone"
    query = lambda: sdk.query_session_by_client_id(
        M.QuerySessionByClientIdRequest(instance_id=INSTANCE, client_id=cid)).body.online_status
    check(query() is False, f"{scheme}: offline before connecting")
    phone = signed(cid)
    check(phone.rc == "Success", f"{scheme}: signature CONNECT ({phone.rc})")
    check(query() is True, f"{scheme}: online once connected")
    batch = sdk.batch_query_session_by_client_ids(M.BatchQuerySessionByClientIdsRequest(
        instance_id=INSTANCE, client_id_list=[cid, f"{group}@@@absent"])).body.online_status_list
    check([(s.client_id, s.online_status) for s in batch] == [(cid, True), (f"{group}@@@absent", False)],
          f"{scheme}: BatchQuerySessionByClientIds")

    # SendMessage reaches a subscriber and a P2P target (which never subscribed).
    phone.subscribe("news/#")
    target = signed(f"{group}@@@target")
    sent = sdk.send_message(M.SendMessageRequest(instance_id=INSTANCE, mqtt_topic="news/today", payload="aGVsbG8=")).body
    check(sent.msg_id, f"{scheme}: SendMessage answers a MsgId")
    phone.wait_for(1, "SendMessage reaches the subscriber")
    check(phone.got[0] == ("news/today", b"aGVsbG8="), f"{scheme}: subscriber got {phone.got[0]}")
    sdk.send_message(M.SendMessageRequest(instance_id=INSTANCE, mqtt_topic=f"cmd/p2p/{group}@@@target", payload="p2p"))
    target.wait_for(1, "SendMessage reaches the P2P target")
    check(target.got[0][1] == b"p2p", f"{scheme}: P2P target got {target.got[0]}")
    target.stop()

    # CloseConnection disconnects the client.
    closed = sdk.close_connection(M.CloseConnectionRequest(instance_id=INSTANCE, client_id=cid)).body
    check(closed.success is True, f"{scheme}: CloseConnection succeeds")
    check(phone.closed.wait(WAIT), f"{scheme}: the client saw its connection close")
    eventually(lambda: query() is False, f"{scheme}: offline once closed")
    phone.c.loop_stop()

    # A token: within its grant, refused outside it; revoked, no new connection.
    watcher = signed(f"{group}@@@watcher")
    watcher.subscribe("tok/#")
    watcher.subscribe("other/#")
    expire = int(time.time() * 1000) + 3_600_000
    token = sdk.apply_token(M.ApplyTokenRequest(instance_id=INSTANCE, resources="tok/#", actions="W",
                                                expire_time=expire)).body.token
    check(token, f"{scheme}: ApplyToken answers a Token")
    check(sdk.query_token(M.QueryTokenRequest(instance_id=INSTANCE, token=token)).body.token_status is True,
          f"{scheme}: QueryToken of a fresh token")
    device = Mqtt(f"{group}@@@tok", f"Token|{AK}|{INSTANCE}", f"W|{token}")
    check(device.rc == "Success", f"{scheme}: token CONNECT ({device.rc})")
    device.publish("other/x", b"outside")
    device.publish("tok/x", b"inside")
    watcher.wait_for(1, "a publish within the token reaches the watcher")
    time.sleep(0.3)
    check(watcher.got == [("tok/x", b"inside")], f"{scheme}: only the granted publish arrived: {watcher.got}")
    device.stop()
    watcher.stop()
    sdk.revoke_token(M.RevokeTokenRequest(instance_id=INSTANCE, token=token))
    check(sdk.query_token(M.QueryTokenRequest(instance_id=INSTANCE, token=token)).body.token_status is False,
          f"{scheme}: QueryToken after RevokeToken")
    again = Mqtt(f"{group}@@@tok2", f"Token|{AK}|{INSTANCE}", f"W|{token}")
    check(again.rc == "Not authorized", f"{scheme}: a revoked token does not connect ({again.rc})")
    again.c.loop_stop()
    refused(lambda: sdk.apply_token(M.ApplyTokenRequest(instance_id=INSTANCE, resources="tok/#", actions="X",
                                                        expire_time=expire)),
            "InvalidParameter.Actions", f"{scheme}: ApplyToken with bad Actions")

    # A device credential: connect, refresh, the old secret no longer connects.
    dev = f"{group}@@@dev-1"
    cred = sdk.register_device_credential(M.RegisterDeviceCredentialRequest(instance_id=INSTANCE, client_id=dev)).body.device_credential
    check(cred.client_id == dev and cred.instance_id == INSTANCE and cred.device_access_key_secret,
          f"{scheme}: RegisterDeviceCredential answers the credential")
    got = sdk.get_device_credential(M.GetDeviceCredentialRequest(instance_id=INSTANCE, client_id=dev)).body.device_credential
    check(got.device_access_key_secret == cred.device_access_key_secret, f"{scheme}: GetDeviceCredential")
    listed = sdk.list_device_credential_client_id(M.ListDeviceCredentialClientIdRequest(
        instance_id=INSTANCE, group_id=group, page_size="10")).body.device_credential_client_id_list
    check(listed.client_id_list == [dev] and listed.total == "1", f"{scheme}: ListDeviceCredentialClientId")
    user = f"DeviceCredential|{cred.device_access_key_id}|{INSTANCE}"
    first = Mqtt(dev, user, sign(cred.device_access_key_secret, dev))
    check(first.rc == "Success", f"{scheme}: device credential CONNECT ({first.rc})")
    dev_online = lambda: sdk.query_session_by_client_id(
        M.QuerySessionByClientIdRequest(instance_id=INSTANCE, client_id=dev)).body.online_status
    check(dev_online() is True, f"{scheme}: the device is online")
    first.stop()
    eventually(lambda: dev_online() is False, f"{scheme}: offline after the device's DISCONNECT")
    fresh = sdk.refresh_device_credential(M.RefreshDeviceCredentialRequest(instance_id=INSTANCE, client_id=dev)).body.device_credential
    check(fresh.device_access_key_secret != cred.device_access_key_secret, f"{scheme}: a refreshed secret is new")
    old = Mqtt(dev, user, sign(cred.device_access_key_secret, dev))
    check(old.rc == "Bad user name or password", f"{scheme}: the old secret is refused ({old.rc})")
    old.c.loop_stop()
    new = Mqtt(dev, user, sign(fresh.device_access_key_secret, dev))
    check(new.rc == "Success", f"{scheme}: the new secret connects ({new.rc})")
    new.stop()
    sdk.un_register_device_credential(M.UnRegisterDeviceCredentialRequest(instance_id=INSTANCE, client_id=dev))
    refused(lambda: sdk.get_device_credential(M.GetDeviceCredentialRequest(instance_id=INSTANCE, client_id=dev)),
            "DeviceCredential.NotFound", f"{scheme}: GetDeviceCredential after UnRegister")

    sdk.delete_group_id(M.DeleteGroupIdRequest(instance_id=INSTANCE, group_id=group))
    gone = Mqtt(f"{group}@@@late", f"Signature|{AK}|{INSTANCE}", sign(SECRET, f"{group}@@@late"))
    check(gone.rc == "Not authorized", f"{scheme}: a deleted group is refused ({gone.rc})")
    gone.c.loop_stop()

    # Refusals the SDK reports as ClientException.
    refused(lambda: api(algorithm, "wrong-secret").query_session_by_client_id(
        M.QuerySessionByClientIdRequest(instance_id=INSTANCE, client_id=cid)),
        "SignatureDoesNotMatch", f"{scheme}: a wrong secret")
    real = Utils.get_timestamp
    Utils.get_timestamp = staticmethod(lambda: "2020-01-01T00:00:00Z")
    try:
        refused(lambda: sdk.query_session_by_client_id(
            M.QuerySessionByClientIdRequest(instance_id=INSTANCE, client_id=cid)),
            "InvalidTimeStamp.Expired", f"{scheme}: an expired date")
    finally:
        Utils.get_timestamp = real
    print(f"{scheme}: ok")


run("acs3", None)
run("rpc", "v2")
print(f"all {checks} checks passed")
