"""What EC2 says of an instance that never changes while it lives, remembered per Lambda container.

An instance's image, its type (fixed while it runs) and the `aws:ec2launchtemplate:*` tags EC2 put
on it at launch (the `aws:` prefix cannot be edited) are all the roll reads from EC2. Every poll
of a group used to describe every instance again: a 1,000-instance group is ten DescribeInstances
calls per round, per wave running at once, against EC2's request-rate limit. Remembered, a poll
describes only the instances it has not seen (the ones launched since).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

LT_ID_TAG = "aws:ec2launchtemplate:id"
LT_VERSION_TAG = "aws:ec2launchtemplate:version"
# Instances remembered (least recently used forgotten first): a few MB at the most.
FACTS_LIMIT = 20_000


@dataclass(frozen=True)
class InstanceFacts:
    image_id: str | None
    instance_type: str | None
    launch_template_id: str | None
    launch_template_version: str | None

    @classmethod
    def of(cls, ec2_instance: dict[str, Any]) -> InstanceFacts:
        """From one `Reservations[].Instances[]` item of DescribeInstances."""
        tags = {t["Key"]: t.get("Value", "") for t in ec2_instance.get("Tags") or []}
        return cls(
            image_id=ec2_instance.get("ImageId"),
            instance_type=ec2_instance.get("InstanceType"),
            launch_template_id=tags.get(LT_ID_TAG),
            launch_template_version=tags.get(LT_VERSION_TAG),
        )

    @property
    def settled(self) -> bool:
        """Worth remembering: an instance seen before its launch tags are (eventual consistency)
        is described again next time; so is one launched without a template (rare)."""
        return bool(self.image_id and self.launch_template_id and self.launch_template_version)


class FactsCache:
    """Thread-safe and bounded; shared by every AsgOps of the process (one Lambda container)."""

    def __init__(self, limit: int = FACTS_LIMIT) -> None:
        self._limit = limit
        self._facts: OrderedDict[str, InstanceFacts] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, ids: Iterable[str]) -> dict[str, InstanceFacts]:
        with self._lock:
            found = {i: self._facts[i] for i in ids if i in self._facts}
            for i in found:
                self._facts.move_to_end(i)
            return found

    def remember(self, facts: dict[str, InstanceFacts]) -> None:
        settled = {i: f for i, f in facts.items() if f.settled}
        with self._lock:
            self._facts.update(settled)
            for i in settled:
                self._facts.move_to_end(i)
            while len(self._facts) > self._limit:
                self._facts.popitem(last=False)


FACTS = FactsCache()
UNKNOWN = InstanceFacts(None, None, None, None)  # an instance EC2 does not show yet
