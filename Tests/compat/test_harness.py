"""The harness's own rules (no server involved): what keeps two suite runs apart."""
from __future__ import annotations

import pytest

from serverproc import _share


def test_port_shares_split_the_range_without_overlap():
    ports = (10000, 32767)
    halves = [_share(ports, "0/2"), _share(ports, "1/2")]
    assert halves == [(10000, 21383), (21384, 32767)]
    assert _share(ports, "") == ports
    thirds = [_share(ports, f"{k}/3") for k in range(3)]
    assert all(a[1] < b[0] for a, b in zip(thirds, thirds[1:]))
    assert thirds[0][0] >= ports[0] and thirds[-1][1] <= ports[1]


@pytest.mark.parametrize("bad", ["2/2", "-1/2", "x", "1/0", "1"])
def test_a_bad_port_share_is_an_error(bad):
    with pytest.raises(ValueError, match="COMPAT_PORT_SHARE"):
        _share((10000, 32767), bad)
