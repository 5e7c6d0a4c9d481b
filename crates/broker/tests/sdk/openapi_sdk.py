# Drives mqgate's HTTP API with the official SDK (alibabacloud-onsmqtt20200420==1.7.1) under
# both signature schemes, and checks the end-to-end cases with paho-mqtt clients, custom
# authentication (identities, permissions, the connect blacklist) and message trace included.
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
        """Subscribes at QoS 1; returns whether the SUBACK granted it (not 0x80)."""
        done, codes = threading.Event(), []
        def on_subscribe(_c, _u, _mid, reason_codes, _p):
            codes.extend(reason_codes)
            done.set()
        self.c.on_subscribe = on_subscribe
        self.c.subscribe(topic, 1)
        check(done.wait(WAIT), f"{self.client_id}: SUBACK for {topic}")
        return not codes[0].is_failure

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


def done(body, what):
    """A write answer of the custom-auth actions: Code 200, Success, a Message, a RequestId."""
    check(body.code == 200 and body.success is True and body.message and body.request_id,
          f"{what}: answer {body.to_map()}")


def custom_auth(scheme, algorithm):
    """Custom identities, permissions and the connect blacklist, every action through the SDK."""
    sdk = api(algorithm)
    group = f"GID_cus{scheme}"
    topic = f"cus{scheme}"
    sdk.create_group_id(M.CreateGroupIdRequest(instance_id=INSTANCE, group_id=group))
    user = f"user-{scheme}"
    done(sdk.add_custom_auth_identity(M.AddCustomAuthIdentityRequest(
        instance_id=INSTANCE, identity_type="USER", username=user, secret="pw", sign_mode="ORIGIN")).body,
        f"{scheme}: AddCustomAuthIdentity")
    allow = lambda action: M.AddCustomAuthPermissionRequest(
        instance_id=INSTANCE, identity_type="USER", identity=user, topic=f"{topic}/#",
        permit_action=action, effect="ALLOW")
    done(sdk.add_custom_auth_permission(allow("PUB_SUB")).body, f"{scheme}: AddCustomAuthPermission ALLOW")
    done(sdk.add_custom_auth_permission(M.AddCustomAuthPermissionRequest(
        instance_id=INSTANCE, identity_type="USER", identity=user, topic=f"{topic}/secret",
        permit_action="PUB_SUB", effect="DENY")).body, f"{scheme}: AddCustomAuthPermission DENY")

    watcher = signed(f"{group}@@@watcher")
    check(watcher.subscribe(f"{topic}/#"), f"{scheme}: the watcher subscribes")
    dev = Mqtt(f"{group}@@@dev", user, "pw")
    check(dev.rc == "Success", f"{scheme}: a USER identity connects ({dev.rc})")
    check(dev.subscribe(f"{topic}/open"), f"{scheme}: SUBSCRIBE within the ALLOW")
    check(not dev.subscribe(f"{topic}/+"), f"{scheme}: SUBSCRIBE overlapping the DENY gets 0x80")
    check(not dev.subscribe("elsewhere/#"), f"{scheme}: SUBSCRIBE without a permission gets 0x80")
    dev.publish(f"{topic}/secret", b"denied")
    dev.publish(f"{topic}/open", b"allowed")
    watcher.wait_for(1, "the allowed publish arrives")
    time.sleep(0.3)
    check([t for t, _ in watcher.got] == [f"{topic}/open"], f"{scheme}: DENY wins: {watcher.got}")

    listed = sdk.query_custom_auth_permission(M.QueryCustomAuthPermissionRequest(
        instance_id=INSTANCE, identity=user, size=10)).body
    check(listed.code == 200 and listed.success, f"{scheme}: QueryCustomAuthPermission answers")
    check([(r.topic, r.permit_action, r.effect, r.identity_type) for r in listed.data.results]
          == [(f"{topic}/#", "PUB_SUB", "ALLOW", "USER"), (f"{topic}/secret", "PUB_SUB", "DENY", "USER")],
          f"{scheme}: QueryCustomAuthPermission lists both: {listed.to_map()}")

    # Narrowed to PUB, on the live connection: its next SUBSCRIBE is refused.
    done(sdk.update_custom_auth_permission(M.UpdateCustomAuthPermissionRequest(
        instance_id=INSTANCE, identity_type="USER", identity=user, topic=f"{topic}/#",
        permit_action="PUB", effect="ALLOW")).body, f"{scheme}: UpdateCustomAuthPermission")
    check(not dev.subscribe(f"{topic}/open2"), f"{scheme}: SUBSCRIBE after the update gets 0x80")
    # Removed: its next PUBLISH is dropped.
    done(sdk.delete_custom_auth_permission(M.DeleteCustomAuthPermissionRequest(
        instance_id=INSTANCE, identity_type="USER", identity=user, topic=f"{topic}/#")).body,
        f"{scheme}: DeleteCustomAuthPermission")
    dev.publish(f"{topic}/open", b"after-removal")
    time.sleep(0.3)
    check(len(watcher.got) == 1, f"{scheme}: a removed permission stops the next PUBLISH: {watcher.got}")

    # A CLIENT identity in SIGNED mode: only from its own client id, with the signature.
    bound = f"{group}@@@bound"
    done(sdk.add_custom_auth_identity(M.AddCustomAuthIdentityRequest(
        instance_id=INSTANCE, identity_type="CLIENT", client_id=bound, username=f"meter-{scheme}",
        secret="meter-pw", sign_mode="SIGNED")).body, f"{scheme}: AddCustomAuthIdentity CLIENT")
    other = Mqtt(f"{group}@@@other", f"meter-{scheme}", sign("meter-pw", f"{group}@@@other"))
    check(other.rc == "Bad user name or password", f"{scheme}: a CLIENT identity from another id ({other.rc})")
    other.c.loop_stop()
    plain = Mqtt(bound, f"meter-{scheme}", "meter-pw")
    check(plain.rc == "Bad user name or password", f"{scheme}: SIGNED refuses the bare secret ({plain.rc})")
    plain.c.loop_stop()
    meter = Mqtt(bound, f"meter-{scheme}", sign("meter-pw", bound))
    check(meter.rc == "Success", f"{scheme}: SIGNED with the signature ({meter.rc})")
    meter.stop()
    done(sdk.update_custom_auth_identity(M.UpdateCustomAuthIdentityRequest(
        instance_id=INSTANCE, identity_type="CLIENT", client_id=bound, username=f"meter-{scheme}",
        secret="meter-pw2", sign_mode="ORIGIN")).body, f"{scheme}: UpdateCustomAuthIdentity")
    meter = Mqtt(bound, f"meter-{scheme}", "meter-pw2")
    check(meter.rc == "Success", f"{scheme}: the updated secret in ORIGIN mode ({meter.rc})")
    meter.stop()

    # Paging: one per page, NextToken to the next.
    first = sdk.query_custom_auth_identity(M.QueryCustomAuthIdentityRequest(instance_id=INSTANCE, size=1)).body
    check(len(first.data.results) == 1 and first.data.next_token, f"{scheme}: a first page of one: {first.to_map()}")
    second = sdk.query_custom_auth_identity(M.QueryCustomAuthIdentityRequest(
        instance_id=INSTANCE, size=1, next_token=first.data.next_token)).body
    check(len(second.data.results) == 1 and second.data.results[0].username != first.data.results[0].username,
          f"{scheme}: the next page: {second.to_map()}")
    mine = sdk.query_custom_auth_identity(M.QueryCustomAuthIdentityRequest(
        instance_id=INSTANCE, size=10, client_id=bound)).body.data.results
    check([(r.identity_type, r.username, r.client_id, r.secret, r.sign_mode) for r in mine]
          == [("CLIENT", f"meter-{scheme}", bound, "meter-pw2", "ORIGIN")], f"{scheme}: QueryCustomAuthIdentity by ClientId")
    done(sdk.delete_custom_auth_identity(M.DeleteCustomAuthIdentityRequest(
        instance_id=INSTANCE, identity_type="CLIENT", client_id=bound, username=f"meter-{scheme}")).body,
        f"{scheme}: DeleteCustomAuthIdentity")
    gone = Mqtt(bound, f"meter-{scheme}", "meter-pw2")
    check(gone.rc == "Bad user name or password", f"{scheme}: a deleted identity ({gone.rc})")
    gone.c.loop_stop()

    # The blacklist closes the online client at once, and refuses it until removed.
    done(sdk.add_custom_auth_connect_black(M.AddCustomAuthConnectBlackRequest(
        instance_id=INSTANCE, client_id=dev.client_id)).body, f"{scheme}: AddCustomAuthConnectBlack")
    check(dev.closed.wait(WAIT), f"{scheme}: the blacklisted client was disconnected")
    dev.c.loop_stop()
    again = Mqtt(dev.client_id, user, "pw")
    check(again.rc == "Not authorized", f"{scheme}: a blacklisted client id is refused ({again.rc})")
    again.c.loop_stop()
    black = sdk.query_custom_auth_connect_black(M.QueryCustomAuthConnectBlackRequest(
        instance_id=INSTANCE, size=10)).body
    check([(r.client_id, r.effect, r.permit_action) for r in black.data.results] == [(dev.client_id, "DENY", "CONNECT")]
          and black.data.next_token is None, f"{scheme}: QueryCustomAuthConnectBlack: {black.to_map()}")
    done(sdk.delete_custom_auth_connect_black(M.DeleteCustomAuthConnectBlackRequest(
        instance_id=INSTANCE, client_id=dev.client_id)).body, f"{scheme}: DeleteCustomAuthConnectBlack")
    back = Mqtt(dev.client_id, user, "pw")
    check(back.rc == "Success", f"{scheme}: off the blacklist, it connects ({back.rc})")
    back.stop()
    watcher.stop()

    # Bad parameters, as the SDK reports them.
    refused(lambda: sdk.add_custom_auth_identity(M.AddCustomAuthIdentityRequest(
        instance_id=INSTANCE, identity_type="USER", username="x", secret="s", sign_mode="PLAIN")),
        "InvalidParameter.SignMode", f"{scheme}: AddCustomAuthIdentity with a bad SignMode")
    refused(lambda: sdk.add_custom_auth_identity(M.AddCustomAuthIdentityRequest(
        instance_id=INSTANCE, identity_type="USER", username=user, secret="pw", sign_mode="ORIGIN")),
        "CustomAuthIdentity.AlreadyExists", f"{scheme}: AddCustomAuthIdentity twice")
    refused(lambda: sdk.add_custom_auth_permission(M.AddCustomAuthPermissionRequest(
        instance_id=INSTANCE, identity_type="USER", identity=user, topic="a/#/b", permit_action="PUB", effect="ALLOW")),
        "InvalidParameter.Topic", f"{scheme}: AddCustomAuthPermission with a bad filter")
    refused(lambda: sdk.delete_custom_auth_permission(M.DeleteCustomAuthPermissionRequest(
        instance_id=INSTANCE, identity_type="USER", identity=user, topic=f"{topic}/#")),
        "CustomAuthPermission.NotFound", f"{scheme}: DeleteCustomAuthPermission of a removed one")
    refused(lambda: sdk.query_custom_auth_identity(M.QueryCustomAuthIdentityRequest(instance_id=INSTANCE, size=101)),
            "InvalidParameter.Size", f"{scheme}: QueryCustomAuthIdentity above 100")
    refused(lambda: sdk.query_custom_auth_connect_black(M.QueryCustomAuthConnectBlackRequest(instance_id=INSTANCE)),
            "MissingParameter.Size", f"{scheme}: QueryCustomAuthConnectBlack without Size")
    refused(lambda: sdk.delete_custom_auth_connect_black(M.DeleteCustomAuthConnectBlackRequest(
        instance_id=INSTANCE, client_id=dev.client_id)),
        "CustomAuthConnectBlack.NotFound", f"{scheme}: DeleteCustomAuthConnectBlack of an absent id")
    done(sdk.delete_custom_auth_identity(M.DeleteCustomAuthIdentityRequest(
        instance_id=INSTANCE, identity_type="USER", username=user)).body, f"{scheme}: DeleteCustomAuthIdentity USER")
    done(sdk.delete_custom_auth_permission(M.DeleteCustomAuthPermissionRequest(
        instance_id=INSTANCE, identity_type="USER", identity=user, topic=f"{topic}/secret")).body,
        f"{scheme}: DeleteCustomAuthPermission DENY")
    sdk.delete_group_id(M.DeleteGroupIdRequest(instance_id=INSTANCE, group_id=group))
    print(f"{scheme}: custom auth ok")


def message_trace(scheme, algorithm):
    """The four trace queries: a device's connects and disconnect, a device's message to a
    subscriber, a SendMessage's id; a bad PageSize."""
    sdk = api(algorithm)
    group = f"GID_tr{scheme}"
    topic = f"tr{scheme}/x"
    sdk.create_group_id(M.CreateGroupIdRequest(instance_id=INSTANCE, group_id=group))
    sub_id, pub_id = f"{group}@@@sub", f"{group}@@@pub"
    sub = signed(sub_id)
    check(sub.subscribe(topic), f"{scheme}: trace subscriber's SUBACK")
    bad = Mqtt(sub_id + "-x", f"Signature|{AK}|{INSTANCE}", sign("wrong-secret", sub_id + "-x"))
    check(bad.rc != "Success", f"{scheme}: a wrong signature is refused ({bad.rc})")
    bad.c.loop_stop()
    pub = signed(pub_id)
    pub.publish(topic, b"traced")
    sub.wait_for(1, "the traced message")
    sent = sdk.send_message(M.SendMessageRequest(instance_id=INSTANCE, mqtt_topic=topic, payload="cmd")).body.msg_id
    sub.wait_for(2, "the SendMessage message")
    sub.stop()
    pub.stop()
    end = int(time.time() * 1000) + 60_000
    window = dict(instance_id=INSTANCE, mqtt_region_id="cn-test", begin_time=0, end_time=end)

    def device(reverse, size=100):
        return sdk.query_mqtt_trace_device(M.QueryMqttTraceDeviceRequest(
            client_id=sub_id, current_page=1, page_size=size, reverse=reverse, **window)).body
    eventually(lambda: device(False).total == 2, f"{scheme}: the subscriber's connect and disconnect traced")
    body = device(False)
    check([d.action for d in body.device_info_list] == ["connect", "disconnect"]
          and [d.action_info for d in body.device_info_list] == ["accepted", "disconnected by client"]
          and body.device_info_list[0].channel_id == body.device_info_list[1].channel_id
          and len(body.device_info_list[0].time) == 23 and body.request_id,
          f"{scheme}: QueryMqttTraceDevice {body.to_map()}")
    newest = device(True, 1)
    check(newest.total == 2 and [d.action for d in newest.device_info_list] == ["disconnect"],
          f"{scheme}: QueryMqttTraceDevice Reverse {newest.to_map()}")
    denied = sdk.query_mqtt_trace_device(M.QueryMqttTraceDeviceRequest(
        client_id=sub_id + "-x", current_page=1, page_size=10, **window)).body.device_info_list
    check([(d.action, d.action_info) for d in denied] == [("connect", "not authorized")],
          f"{scheme}: the refused connect is traced")

    mine = sdk.query_mqtt_trace_message_of_client(M.QueryMqttTraceMessageOfClientRequest(
        client_id=pub_id, current_page=1, page_size=10, **window)).body
    check(mine.total == 1 and mine.message_of_client_list[0].action == "pub_mqtt",
          f"{scheme}: QueryMqttTraceMessageOfClient {mine.to_map()}")
    msg = mine.message_of_client_list[0].msg_id
    how = sdk.query_mqtt_trace_message_publish(M.QueryMqttTraceMessagePublishRequest(msg_id=msg, **window)).body
    check([(t.action, t.client_id) for t in how.message_trace_lists] == [("pub_mqtt", pub_id)],
          f"{scheme}: QueryMqttTraceMessagePublish {how.to_map()}")
    to = sdk.query_mqtt_trace_message_subscribe(M.QueryMqttTraceMessageSubscribeRequest(
        msg_id=msg, current_page=1, page_size=10, **window)).body
    check(to.total == 1 and [(t.action, t.client_id, t.msg_id) for t in to.message_trace_lists] == [("sub", sub_id, msg)],
          f"{scheme}: QueryMqttTraceMessageSubscribe {to.to_map()}")
    backend = sdk.query_mqtt_trace_message_publish(M.QueryMqttTraceMessagePublishRequest(msg_id=sent, **window)).body
    check([t.action for t in backend.message_trace_lists] == ["pub_mq"],
          f"{scheme}: SendMessage's id traced {backend.to_map()}")
    refused(lambda: sdk.query_mqtt_trace_device(M.QueryMqttTraceDeviceRequest(
        client_id=sub_id, current_page=1, page_size=101, **window)),
        "InvalidParameter.PageSize", f"{scheme}: PageSize over 100")
    sdk.delete_group_id(M.DeleteGroupIdRequest(instance_id=INSTANCE, group_id=group))
    print(f"{scheme}: trace ok")


run("acs3", None)
run("rpc", "v2")
custom_auth("acs3", None)
custom_auth("rpc", "v2")
message_trace("acs3", None)
message_trace("rpc", "v2")
print(f"all {checks} checks passed")
