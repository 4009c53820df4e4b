"""paho-mqtt (Debian python3-paho-mqtt) driving the gateway, for the interop tests.

roundtrip PORT VERSION: subscribes at QoS 2, publishes QoS 0/1/2 and a retained message,
    then checks with a second client that the retained one is kept. Prints RESULT lines.
will PORT TOPIC: connects with a will, prints READY, then dies without DISCONNECT.
"""
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt

TIMEOUT = 30


def make_client(version, client_id=""):
    protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
    if version == "5":
        return mqtt.Client(client_id=client_id, protocol=protocol)
    return mqtt.Client(client_id=client_id, clean_session=True, protocol=protocol)


def connect(client, port, version):
    connected = threading.Event()

    def on_connect(c, userdata, flags, rc, properties=None):
        if rc != 0:
            print("CONNECT-FAILED", rc, flush=True)
            os._exit(3)
        connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(TIMEOUT):
        print("TIMEOUT connect", flush=True)
        os._exit(4)


def subscribe(client, topic, qos):
    done = threading.Event()
    client.on_subscribe = lambda *args: done.set()
    client.subscribe(topic, qos)
    if not done.wait(TIMEOUT):
        print("TIMEOUT subscribe", flush=True)
        os._exit(4)


def roundtrip(port, version):
    received = []
    got = threading.Condition()

    def on_message(c, userdata, msg):
        with got:
            received.append((msg.topic, msg.payload.decode(), msg.qos, bool(msg.retain)))
            got.notify_all()

    sub = make_client(version)
    sub.on_message = on_message
    connect(sub, port, version)
    subscribe(sub, "paho/#", 2)

    pub = make_client(version, "paho-pub-" + version)
    connect(pub, port, version)
    for qos in (0, 1, 2):
        info = pub.publish("paho/qos%d" % qos, "payload-%d" % qos, qos=qos)
        info.wait_for_publish(TIMEOUT)
    pub.publish("paho/retained", "kept", qos=1, retain=True).wait_for_publish(TIMEOUT)

    with got:
        if not got.wait_for(lambda: len(received) >= 4, TIMEOUT):
            print("TIMEOUT messages", received, flush=True)
            os._exit(4)
    for topic, payload, qos, retain in received:
        print("RESULT %s %s %d %s" % (topic, payload, qos, retain), flush=True)

    late_received = []
    late_got = threading.Event()

    def on_late(c, userdata, msg):
        late_received.append((msg.topic, msg.payload.decode(), bool(msg.retain)))
        late_got.set()

    late = make_client(version)
    late.on_message = on_late
    connect(late, port, version)
    subscribe(late, "paho/retained", 1)
    if not late_got.wait(TIMEOUT):
        print("TIMEOUT retained", flush=True)
        os._exit(4)
    print("RETAINED %s %s %s" % late_received[0], flush=True)
    for c in (sub, pub, late):
        c.disconnect()
        c.loop_stop()


def will(port, topic):
    client = make_client("4", "paho-will")
    client.will_set(topic, "paho-died", qos=1)
    connect(client, port, "4")
    print("READY", flush=True)
    time.sleep(0.5)  # let the loop thread settle; the test waits for READY, not for this
    os._exit(0)      # no DISCONNECT: the gateway must publish the will


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "roundtrip":
        roundtrip(int(sys.argv[2]), sys.argv[3])
    elif mode == "will":
        will(int(sys.argv[2]), sys.argv[3])
    print("DONE", flush=True)
