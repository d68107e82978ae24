"""JetStream API answers in detail, proven against nats-server 2.15.1 and clusterd: the
`_nats.*` metadata of consumer configs, consumer config defaults and refusals (backoff against
max_deliver, negative values, deliver policies without their start, filters outside the
stream, durable names against the request subject), a pull request's limits, the fields an
error answer still carries (a purge's count, a pause's state, a names list), stream configs'
refusals and normalisation, a never-used stream's first_seq, and message get/delete at the
edges."""
from __future__ import annotations

import json

import pytest

from natsutil import js_api

pytestmark = pytest.mark.jetstream

SECOND = 1_000_000_000


async def _create(nc, stream: str, name: str, **cfg) -> dict:
    return await js_api(nc, f"CONSUMER.CREATE.{stream}.{name}",
                      {"stream_name": stream, "config": {"durable_name": name, "ack_policy": "explicit", **cfg}})


def _err(r: dict) -> tuple:
    return (r["error"]["code"], r["error"]["err_code"], r["error"]["description"])


@pytest.fixture
async def stream(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    for i in range(3):
        await js.publish(f"{uniq}.{i}", b"x")
    return uniq


async def test_consumerConfig_carriesTheServersMetadata(js_nc, stream):
    r = await _create(js_nc, stream, "plain", metadata={"team": "ml"})
    md = r["config"]["metadata"]
    assert md["team"] == "ml" and md["_nats.req.level"] == "0"
    assert {"_nats.level", "_nats.ver"} <= set(md)
    r = await _create(js_nc, stream, "paused", pause_until="2099-01-01T00:00:00Z")
    assert r["config"]["metadata"]["_nats.req.level"] == "1"  # pausing needs API level 1
    info = await js_api(js_nc, f"CONSUMER.INFO.{stream}.paused", {})
    assert info["config"]["metadata"]["_nats.req.level"] == "1" and info["paused"] is True
    listed = await js_api(js_nc, f"CONSUMER.LIST.{stream}", {})
    by_name = {c["name"]: c["config"]["metadata"] for c in listed["consumers"]}
    assert by_name == {"plain": {"team": "ml", "_nats.req.level": "0"}, "paused": {"_nats.req.level": "1"}}


async def test_consumerConfig_defaultsAndRefusals(js_nc, stream):
    # Backoff: fewer deliveries than values is refused; as many is taken; ack none takes it too.
    r = await _create(js_nc, stream, "b1", backoff=[SECOND, 2 * SECOND], max_deliver=1)
    assert _err(r) == (400, 10116, "max deliver is required to be > length of backoff values")
    r = await _create(js_nc, stream, "b2", backoff=[SECOND, 2 * SECOND], max_deliver=2)
    assert (r["config"]["ack_wait"], r["config"]["max_deliver"]) == (SECOND, 2)
    r = await _create(js_nc, stream, "b3", backoff=[SECOND], ack_policy="none")
    assert r["config"]["backoff"] == [SECOND] and "max_ack_pending" not in r["config"]
    # Negative values: max_deliver becomes unlimited, inactive_threshold is dropped, ack_wait refused.
    r = await _create(js_nc, stream, "n1", max_deliver=-5, inactive_threshold=-SECOND)
    assert r["config"]["max_deliver"] == -1 and "inactive_threshold" not in r["config"]
    assert _err(await _create(js_nc, stream, "n2", ack_wait=-1)) == (400, 10183, "consumer ack wait needs to be positive")
    # Deliver policies that need a start.
    assert _err(await _create(js_nc, stream, "d1", deliver_policy="by_start_sequence")) == \
        (400, 10094, "consumer delivery policy is deliver by start sequence, but optional start sequence is not set")
    assert _err(await _create(js_nc, stream, "d2", deliver_policy="by_start_time")) == \
        (400, 10094, "consumer delivery policy is deliver by start time, but optional start time is not set")
    # Filters: both forms refused; one outside the stream's subjects is taken and matches nothing.
    r = await _create(js_nc, stream, "f1", filter_subject=f"{stream}.1", filter_subjects=[f"{stream}.2"])
    assert _err(r) == (400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified")
    r = await _create(js_nc, stream, "f2", filter_subject="elsewhere.>")
    assert r["config"]["filter_subject"] == "elsewhere.>" and r["num_pending"] == 0
    # A push consumer without acks has no max_ack_pending.
    r = await js_api(js_nc, f"CONSUMER.CREATE.{stream}.p1",
                   {"stream_name": stream, "config": {"durable_name": "p1", "ack_policy": "none", "deliver_subject": "p1.in"}})
    assert "max_ack_pending" not in r["config"], r
    # The durable name must be the one in the subject.
    r = await js_api(js_nc, f"CONSUMER.CREATE.{stream}.c13",
                   {"stream_name": stream, "config": {"name": "c13", "durable_name": "other", "ack_policy": "explicit"}})
    assert _err(r) == (400, 10017, "consumer name in subject does not match durable name in request")


async def test_pullRequest_withoutExpires_isCheckedAgainstMaxBytes_andServed(js_nc, stream):
    await _create(js_nc, stream, "lim", max_expires=SECOND, max_bytes=100)
    msg = await js_nc.request(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.lim", json.dumps({"batch": 1, "max_bytes": 1000}).encode(),
                              timeout=5)
    assert (msg.headers or {}).get("Status") == "409"
    # Not "Exceeded MaxRequestExpires": a request without expires is not past max_expires.
    assert msg.headers.get("Description") == "Exceeded MaxRequestMaxBytes of 100"
    # Within the limits, a request without expires is served: the message reaches the request's
    # inbox with its stored subject (so nats-py's shared request inbox, which matches replies
    # by subject, never sees it: an inbox of its own is needed).
    inbox = js_nc.new_inbox()
    sub = await js_nc.subscribe(inbox)
    await js_nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.lim", json.dumps({"batch": 1}).encode(), reply=inbox)
    got = await sub.next_msg(timeout=5)
    assert (got.subject, got.data, got.reply.startswith(f"$JS.ACK.{stream}.lim.")) == (f"{stream}.0", b"x", True)
    await sub.unsubscribe()


async def test_errorAnswers_keepTheirResponseFields(js_nc, stream):
    r = await js_api(js_nc, f"STREAM.PURGE.{stream}", {"seq": 2, "keep": 1})
    assert _err(r) == (400, 10003, "bad request") and r["purged"] == 0
    r = await js_api(js_nc, f"CONSUMER.PAUSE.{stream}.nope", {})
    assert r["error"]["err_code"] == 10014 and r["paused"] is False
    info = await js_api(js_nc, f"STREAM.INFO.{stream}", {})
    assert info["config"]["allow_msg_ttl"] is False


async def test_streamAnswers_inDetail(js, js_nc, uniq, js_replicas):
    base = {"storage": "file", "num_replicas": js_replicas}
    # A stream that never stored anything shows first_seq 0; stream info is paged (zeros).
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"], max_msg_size=-5)
    info = await js_api(js_nc, f"STREAM.INFO.{uniq}", {})
    assert info["config"]["max_msg_size"] == -1  # negative means unlimited
    assert (info["state"]["first_seq"], info["state"]["last_seq"]) == (0, 0)
    assert (info["total"], info["offset"], info["limit"]) == (0, 0, 0)
    # Refusals with nats-server's codes and texts.
    bad = {"name": f"{uniq}X", "subjects": [f"{uniq}x.>"], **base}
    for extra, want in [
        ({"storage": "disk"}, (400, 10025, 'invalid JSON: can not unmarshal "\\"disk\\""')),
        ({"retention": "bogus"}, (400, 10025, 'invalid JSON: can not unmarshal "\\"bogus\\""')),
        ({"compression": "zstd"}, (400, 10025, "invalid JSON: unknown compression algorithm")),
        ({"subjects": [f"{uniq}x.*.>", f"{uniq}x.a.b"]},
         (500, 10052, f'subject "{uniq}x.*.>" overlaps with "{uniq}x.a.b"')),
        ({"discard_new_per_subject": True}, (500, 10052, "discard new per subject requires discard new policy to be set")),
        ({"description": "d" * 5000}, (500, 10052, "stream description is too long, maximum allowed is 4096")),
    ]:
        assert _err(await js_api(js_nc, f"STREAM.CREATE.{uniq}X", {**bad, **extra})) == want, extra
    r = await _create(js_nc, uniq, "c", deliver_policy="bogus")
    assert _err(r) == (400, 10025, 'invalid JSON: can not unmarshal "\\"bogus\\""')
    # Message get and delete at the edges.
    assert (await js.publish(f"{uniq}.a", b"x")).seq == 1
    assert _err(await js_api(js_nc, f"STREAM.MSG.GET.{uniq}", {"seq": 0})) == (400, 10003, "bad request")
    assert _err(await js_api(js_nc, f"STREAM.MSG.DELETE.{uniq}", {"seq": 0})) == (500, 10057, "no message found")
    assert _err(await js_api(js_nc, f"STREAM.MSG.DELETE.{uniq}", {"seq": 5})) == (500, 10057, "stream store EOF")
    # A names or list request that fails still carries its list: empty, but null for stream names.
    for subject, key, empty in [(f"CONSUMER.NAMES.{uniq}", "consumers", []), (f"CONSUMER.LIST.{uniq}", "consumers", []),
                                ("STREAM.NAMES", "streams", None), ("STREAM.LIST", "streams", [])]:
        r = json.loads((await js_nc.request(f"$JS.API.{subject}", b"{bad", timeout=5)).data)
        assert r["error"]["err_code"] == 10025 and r[key] == empty and r["total"] == 0, (subject, r)


async def test_updates_refusedWithNatsServersCodesAndTexts(js, js_nc, stream, js_replicas):
    r = await js_api(js_nc, f"STREAM.UPDATE.{stream}",
                   {"name": stream, "subjects": [f"{stream}.>"], "allow_msg_ttl": True, "num_replicas": js_replicas})
    assert "error" not in r, r
    r = await js_api(js_nc, f"STREAM.UPDATE.{stream}",
                   {"name": stream, "subjects": [f"{stream}.>"], "allow_msg_ttl": False, "num_replicas": js_replicas})
    assert _err(r) == (500, 10052, "message TTL status can not be disabled")
    await _create(js_nc, stream, "u")
    for change, text in [({"ack_policy": "all"}, "ack policy can not be updated"),
                         ({"deliver_policy": "new"}, "deliver policy can not be updated"),
                         ({"deliver_subject": "u.in"}, "can not update pull consumer to push based"),
                         ({"max_waiting": 10}, "max waiting can not be updated")]:
        r = await js_api(js_nc, f"CONSUMER.CREATE.{stream}.u",
                       {"stream_name": stream, "action": "update",
                        "config": {"durable_name": "u", "ack_policy": "explicit", **change}})
        assert _err(r) == (500, 10012, text), change
    push = {"durable_name": "p", "ack_policy": "explicit", "deliver_subject": "p.in"}
    assert "error" not in await js_api(js_nc, f"CONSUMER.CREATE.{stream}.p", {"stream_name": stream, "config": push})
    r = await js_api(js_nc, f"CONSUMER.CREATE.{stream}.p",
                   {"stream_name": stream, "action": "update",
                    "config": {**push, "flow_control": True, "idle_heartbeat": SECOND}})
    assert _err(r) == (500, 10012, "heart beats can not be updated")
