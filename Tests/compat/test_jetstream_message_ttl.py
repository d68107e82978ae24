"""Per-message TTL (`Nats-TTL`, `allow_msg_ttl`), proven against nats-server 2.15.1 and clusterd:
a message goes when its TTL passes and the others stay; bad values and streams without TTLs
refuse the publish; `never` outlives the stream's max_age while a longer TTL does not, and
messages stored after a never-expiring one still age out."""
from __future__ import annotations

import nats.js.errors
import pytest
from nats.js.api import StreamConfig

from natsutil import wait_state

pytestmark = pytest.mark.jetstream




async def test_messageTTL_expiresOnlyThatMessage_badValuesRefused(js, uniq):
    await js.add_stream(StreamConfig(name=uniq, subjects=[f"{uniq}.>"], allow_msg_ttl=True))
    await js.publish(f"{uniq}.a", b"short", headers={"Nats-TTL": "1s"})
    await js.publish(f"{uniq}.b", b"stays")
    for bad in ("0.5s", "abc", "0"):
        with pytest.raises(nats.js.errors.BadRequestError) as e:
            await js.publish(f"{uniq}.a", b"x", headers={"Nats-TTL": bad})
        assert e.value.err_code == 10165, bad
    st = await wait_state(js, uniq, lambda st: st.messages == 1)
    assert (st.first_seq, st.last_seq) == (2, 2)
    await js.add_stream(StreamConfig(name=f"{uniq}N", subjects=[f"{uniq}n.>"]))
    with pytest.raises(nats.js.errors.BadRequestError) as e:
        await js.publish(f"{uniq}n.a", b"x", headers={"Nats-TTL": "5"})
    assert e.value.err_code == 10166


async def test_ttlNever_outlivesMaxAge_aLongerTTLDoesNot(js, uniq):
    await js.add_stream(StreamConfig(name=uniq, subjects=[f"{uniq}.>"], max_age=1.0, allow_msg_ttl=True))
    await js.publish(f"{uniq}.keep", b"k", headers={"Nats-TTL": "never"})
    await js.publish(f"{uniq}.plain", b"p")
    await js.publish(f"{uniq}.long", b"l", headers={"Nats-TTL": "1h"})
    st = await wait_state(js, uniq, lambda st: st.messages == 1)
    assert (st.first_seq, st.last_seq) == (1, 3)
    assert (await js.get_msg(uniq, 1)).data == b"k"
    # Messages stored after it still age out.
    await js.publish(f"{uniq}.later", b"x")
    st = await wait_state(js, uniq, lambda st: st.messages == 1 and st.last_seq == 4)
    assert st.first_seq == 1
