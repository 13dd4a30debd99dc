"""What every handler shares: parse the typed input, add log keys, call one service, return JSON.

Exceptions are not caught: Lambda reports the class name as `errorType`, which is the error name
the state machine's Retry and Catch blocks match on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from eks_rolling.guard import check_rounds
from eks_rolling.services.deps import Deps

logger = Logger(service="eks-rolling")
# X-Ray: one segment per step invocation; Powertools patches botocore and http.client (under the
# kubernetes client's urllib3), so each AWS SDK and Kubernetes API call is a subsegment. Off
# outside Lambda (no LAMBDA_TASK_ROOT: the sandbox) and with POWERTOOLS_TRACE_DISABLED=true.
tracer = Tracer(service="eks-rolling")
In = TypeVar("In", bound=BaseModel)

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def step_handler(model: type[In], service: Callable[[In, Deps], BaseModel]) -> Handler:
    @logger.inject_lambda_context(log_event=False, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)  # states can be large: ids only
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        inp = model.model_validate(event)
        tracer.put_annotation("step", service.__name__)
        ctx = getattr(inp, "ctx", None)
        if ctx is not None:
            logger.append_keys(execution=ctx.execution_id, asg=ctx.asg_name)
            tracer.put_annotation("asg", ctx.asg_name)
            tracer.put_annotation("cluster", ctx.cluster_name)
        node = getattr(inp, "node", None)
        if node is not None:
            logger.append_keys(node=node.node_name, instance=node.instance_id)
            tracer.put_annotation("instance", node.instance_id)
        check_rounds(inp, service.__name__)  # before any work: the wave's history budget
        out = service(inp, Deps.from_env())
        logger.info("step done", extra={"step": service.__name__})
        return out.model_dump(mode="json")

    traced: Handler = handler  # Powertools' decorators are untyped
    return traced
