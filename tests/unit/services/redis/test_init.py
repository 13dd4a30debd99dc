"""The procedures table: one procedure for each kind of Redis group discovery accepts, listed
explicitly (no procedure registers itself on import)."""

from __future__ import annotations

import typing

from eks_rolling.redis.discovery import RedisGroup
from eks_rolling.services.redis import PROCEDURES


def test_every_group_kind_has_its_procedure_under_its_own_kind() -> None:
    kinds = set(typing.get_args(typing.get_type_hints(RedisGroup)["kind"]))
    assert kinds == {"sentinel", "cluster"}
    assert set(PROCEDURES) == kinds
    assert all(proc.kind == kind for kind, proc in PROCEDURES.items())
