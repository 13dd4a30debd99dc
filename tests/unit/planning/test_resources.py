"""Resource quantities, pod requests and the EKS allocatable of instance types."""

from __future__ import annotations

import pytest

from eks_rolling.planning.resources import (
    MIB,
    Resources,
    cpu_millis,
    instance_capacity,
    memory_bytes,
    requests_of,
    reserved_cpu_millis,
)


@pytest.mark.parametrize(
    ("text", "millis"), [("250m", 250), ("1", 1000), ("0.1", 100), ("1.5", 1500), (2, 2000), (None, 0)]
)
def test_cpu_quantities(text: str | int | None, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(
    ("text", "n"),
    [("128Mi", 128 * MIB), ("1Gi", 1024 * MIB), ("1G", 10**9), ("500k", 500_000), ("1e3", 1000)],
)
def test_memory_quantities(text: str, n: int) -> None:
    assert memory_bytes(text) == n


def test_a_malformed_quantity_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not a resource quantity: '12 cores'"):
        cpu_millis("12 cores")


def test_requests_sum_containers_and_a_limit_stands_in_for_a_missing_request() -> None:
    containers = [
        {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
        {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        {"name": "no-resources"},
    ]
    assert requests_of(containers) == Resources(1100, 1088 * MIB)


def test_eks_reservations_match_what_eks_nodes_report() -> None:
    # The AMI's kube-reserved cpu: 6% + 1% + 0.5% + 0.5% of a 4-vCPU node is 80m (3920m allocatable
    # on an m5.xlarge, as `kubectl describe node` shows on EKS)
    assert [reserved_cpu_millis(n) for n in (1, 2, 4, 8)] == [60, 70, 80, 90]
    xl = instance_capacity("m5.xlarge")
    assert xl is not None and xl.allocatable.cpu_m == 3920
    # memory: 11 MiB x 58 pods + 255 MiB kube-reserved + 100 MiB eviction threshold
    assert xl.capacity.memory - xl.allocatable.memory == (11 * 58 + 255 + 100) * MIB
    assert instance_capacity("x9.nonsense") is None
