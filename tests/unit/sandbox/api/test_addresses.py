"""Node addresses: every node index of a run owns its own loopback block, so a 1,000-node roll
(2,000 instances) never hands two live pods one IP, and nodes 1-254 keep the addresses of old."""

from __future__ import annotations

import ipaddress

import pytest

from eks_rolling_sandbox.api.objects import ADDRESSES_PER_NODE, MAX_NODE_INDEX, pod_ip


def test_the_first_254_nodes_keep_their_addresses() -> None:
    assert pod_ip(7, 1) == "127.7.0.1"
    assert pod_ip(7, 4) == "127.7.0.4"
    assert pod_ip(254, 300) == "127.254.1.44"


def test_every_address_of_every_node_is_loopback_and_owned_by_one_node() -> None:
    owner: dict[str, int] = {}
    # Each node's first and last addresses, over every index: blocks never overlap.
    for k in range(0, MAX_NODE_INDEX + 1):
        for n in (1, 2, 255, 256, ADDRESSES_PER_NODE - 1):
            ip = pod_ip(k, n)
            assert ipaddress.ip_address(ip).is_loopback
            assert owner.setdefault(ip, k) == k, f"{ip} is node {owner[ip]}'s and node {k}'s"
    assert MAX_NODE_INDEX >= 2 * 1000 + 254  # a 1,000-node roll fits beside the tests' indices


@pytest.mark.parametrize(("k", "n"), [(-1, 2), (MAX_NODE_INDEX + 1, 2), (1, 0), (1, ADDRESSES_PER_NODE)])
def test_an_address_outside_the_scheme_is_an_error(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="no sandbox address"):
        pod_ip(k, n)
