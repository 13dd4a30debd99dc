"""The one list of step ids. Every other spelling is derived from it:

    drain_node -> state `DrainNode`, handler `lambdas/drain_node.py`,
                  placeholder `${DrainNodeFunctionArn}`, models `DrainNodeInput` / `DrainNodeOutput`.

A contract test checks that the ASL, `lambdas/`, the models and the CDK stack agree with this list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Every step's Lambda timeout. The ASL's Task TimeoutSeconds are a little longer (330 s), so that a
# States.Timeout retry never starts while the first invocation may still be running.
LAMBDA_TIMEOUT_S: Final = 300


@dataclass(frozen=True)
class Step:
    id: str

    @property
    def state(self) -> str:
        return "".join(part.capitalize() for part in self.id.split("_"))

    @property
    def placeholder(self) -> str:
        return f"{self.state}FunctionArn"

    @property
    def handler(self) -> str:
        return f"lambdas.{self.id}.handler"


STEPS: tuple[Step, ...] = tuple(
    Step(s)
    for s in (
        "resolve_target",
        "acquire_lock",
        "plan_roll",
        "await_window",
        "pause_autoscaler",
        "suspend_processes",
        "taint_old_nodes",
        "check_gate",
        "taint_remaining_nodes",
        "surge_capacity",
        "wait_new_nodes",
        "pre_drain_hooks",
        "move_redis_pods",
        "drain_node",
        "wait_owners_ready",
        "exclude_from_load_balancers",
        "terminate_instance",
        "post_replace_hooks",
        "restore_cluster",
        "revert_target",
        "release_lock",
        "rollback",
    )
)

BY_ID: dict[str, Step] = {s.id: s for s in STEPS}
