"""bench/roll_scale.py's lower bound: the boot, the longest PDB-forced eviction chain and the
deregistration delay, from the scenario; a tighter PDB lengthens it (a number that can move)."""

from __future__ import annotations

import pytest

from bench.roll_scale import (
    LAMBDA_MEMORY_MB,
    REPLICAS,
    allowed,
    cost_per_1000_nodes,
    deployments,
    lower_bound_s,
    main,
)
from eks_rolling_sandbox.api.objects import MAX_NODE_INDEX
from infra.workflow import MEMORY_MB


def test_a_pdb_percentage_rounds_up_as_kubernetes_does_and_never_allows_zero() -> None:
    assert allowed(1, REPLICAS) == 1
    assert allowed("20%", REPLICAS) == 2
    assert allowed("30%", REPLICAS) == 3
    assert allowed("1%", REPLICAS) == 1


def test_the_lower_bound_is_the_slowest_boot_plus_the_maxunavailable_1_chain_plus_deregistration() -> None:
    # 30 nodes x 15 pods: 45 Deployments of 10, PDBs 1 / 20 % / 30 % in turn
    assert len(deployments(30, 15)) == 45
    assert {mu for _, mu in deployments(30, 15)} == {1, "20%", "30%"}
    # boot 90 s x 1.33 jitter = 119.7, then 10 evictions one at a time x (8 s start + 1 s ready), then 30 s
    assert lower_bound_s(30, 15) == 239.7
    # Control: without the maxUnavailable 1 PDBs the chain is 5 steps (20 %), not 10.
    assert lower_bound_s(30, 15, pdbs=("20%", "30%")) == 194.7


def test_cost_per_1000_nodes_at_list_prices() -> None:
    # 40 transitions ($1.00), 15 invocations ($0.003) and 1 GB-s ($0.0167) per node, x 1,000
    assert cost_per_1000_nodes(40, 15, 1.0) == 1.02
    assert cost_per_1000_nodes(80, 15, 1.0) == 2.02  # transitions dominate


def test_the_cost_uses_the_memory_size_the_stack_deploys() -> None:
    assert LAMBDA_MEMORY_MB == MEMORY_MB


def test_a_size_the_sandbox_cannot_address_stops_before_any_sandbox_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--sizes", f"30,{MAX_NODE_INDEX // 2 + 1}", "--serial-nodes", "0"])
    assert exc.value.code == 2
    assert f"size(s) [{MAX_NODE_INDEX // 2 + 1}]" in capsys.readouterr().err
