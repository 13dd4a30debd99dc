"""The general rule for owners whose status we cannot read: back at the count before the drain."""

from __future__ import annotations

from eks_rolling.models import EvictedPod, OwnerRefModel
from eks_rolling.planning.owners import OwnerPods, counted_before, recovered
from eks_rolling.services.drain import _owners


def test_an_unknown_owner_is_not_recovered_until_its_ready_pods_are_back() -> None:
    # Given a Rollout that had 3 Ready pods before the drain, one evicted
    assert counted_before("Rollout", OwnerPods(present=3, ready=3, running=3)) == 3
    # When the evicted pod is not back yet, Then the Rollout is not recovered
    ok, why = recovered("Rollout shop/web", "Rollout", 3, OwnerPods(present=2, ready=2, running=2))
    assert not ok and why == "Rollout shop/web: 2/3 pods ready (as many as before the drain)"
    # ... nor when it is back but not Ready
    assert not recovered("Rollout shop/web", "Rollout", 3, OwnerPods(present=3, ready=2, running=3))[0]
    assert recovered("Rollout shop/web", "Rollout", 3, OwnerPods(present=3, ready=3, running=3))[0]


def test_without_a_recorded_count_one_ready_pod_is_needed() -> None:
    assert not recovered("Foo ns/x", "Foo", None, OwnerPods(0, 0, 0))[0]
    assert recovered("Foo ns/x", "Foo", None, OwnerPods(1, 1, 1))[0]


def test_a_job_recovers_when_it_completes_or_its_pods_run_again() -> None:
    assert counted_before("Job", OwnerPods(present=2, ready=0, running=2)) == 2
    assert not recovered("Job ns/j", "Job", 2, OwnerPods(1, 0, 1))[0]
    assert recovered("Job ns/j", "Job", 2, OwnerPods(2, 0, 2))[0]
    assert recovered("Job ns/j", "Job", 2, OwnerPods(0, 0, 0), job_done=True) == (True, "Job ns/j: complete")


def test_each_owner_is_waited_for_once_with_the_highest_count_seen() -> None:
    web = OwnerRefModel(kind="Rollout", namespace="shop", name="web")
    ds = OwnerRefModel(kind="DaemonSet", namespace="kube-system", name="proxy")
    evicted = [
        EvictedPod(namespace="shop", name="web-1", owner=web, before=3),
        EvictedPod(namespace="shop", name="web-2", owner=web, before=2),  # a later round
        EvictedPod(namespace="kube-system", name="proxy-1", owner=ds),
    ]
    assert _owners(evicted) == [(web, 3)]
