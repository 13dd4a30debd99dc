"""What a run changed, recorded on the ASG as a tag keyed by the run, so that a run that died
without its Catch path (aborted, timed out) can still be restored by the next one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from ..aws.asg import AsgOps

TAG_PREFIX = "eks-rolling/saved/"


@dataclass
class Saved:
    run: str
    ca: int | None = None
    desired: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    processes: list[str] = field(default_factory=list)

    def encode(self) -> str:
        # Tag values are limited to 256 characters: keep it compact.
        body = {
            "ca": self.ca,
            "d": self.desired,
            "mn": self.min_size,
            "mx": self.max_size,
            "p": self.processes,
        }
        return json.dumps({k: v for k, v in body.items() if v not in (None, [])}, separators=(",", ":"))

    @classmethod
    def decode(cls, run: str, value: str) -> Saved:
        try:
            body = json.loads(value)
        except ValueError:
            return cls(run)
        return cls(
            run, body.get("ca"), body.get("d"), body.get("mn"), body.get("mx"), list(body.get("p") or [])
        )


def read_saved(tags: Mapping[str, str]) -> dict[str, Saved]:
    return {
        k[len(TAG_PREFIX) :]: Saved.decode(k[len(TAG_PREFIX) :], v)
        for k, v in tags.items()
        if k.startswith(TAG_PREFIX)
    }


def write_saved(asg: AsgOps, asg_name: str, saved: Saved) -> None:
    asg.put_tags(asg_name, {TAG_PREFIX + saved.run: saved.encode()})


def delete_saved(asg: AsgOps, asg_name: str, runs: list[str]) -> None:
    if runs:
        asg.delete_tags(asg_name, [TAG_PREFIX + r for r in runs])


def merged_stale(saved: Mapping[str, Saved], ours: str) -> Saved | None:
    """Originals left by earlier runs that never restored (we hold the lock, so they are dead).
    The oldest values win: they were recorded before anything was paused."""
    stale = [s for run, s in sorted(saved.items()) if run != ours]
    if not stale:
        return None
    out = Saved(run="stale")
    for s in stale:
        for f in ("ca", "desired", "min_size", "max_size"):
            if getattr(out, f) is None and getattr(s, f) is not None:
                setattr(out, f, getattr(s, f))
        out.processes += [p for p in s.processes if p not in out.processes]
    return out


__all__ = ["TAG_PREFIX", "Saved", "asdict", "delete_saved", "merged_stale", "read_saved", "write_saved"]
