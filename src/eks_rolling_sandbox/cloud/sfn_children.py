"""Child executions (`states:startExecution.sync:2`) in moto's Step Functions interpreter.

moto 5.2's interpreter has the service integration but three gaps stop it from running a parent
that starts children, so this module patches them, here only, for the sandbox (the ASL is the one
that deploys; nothing in it is sandbox-specific):

1. Request and response casing. The ASL says `StateMachineArn`, `Name`, `Input` (as on AWS); moto
   hands them to boto3 as they are (boto3 wants `stateMachineArn`...) and returns DescribeExecution
   in boto3's casing, where AWS returns `ExecutionArn`, `Status`, `Output`, `Error`, `Cause`.
   `StateTaskService._normalise_parameters/_normalise_response` are empty in moto; they are filled
   in with botocore's own shapes (as LocalStack, moto's upstream for this parser, does).
2. StartExecution deep-copies the state machine, executions included: a RUNNING execution holds
   locks and threads and the copy fails (HTTP 500), so a second child of a machine with a running
   one could never start. The copy leaves the executions out (the clone only runs one).
3. A Map iteration that fails with a `States.*` error (a failed child surfaces as
   `States.TaskFailed`) is re-raised by moto as a custom error name, which refuses the `States.`
   prefix: the Map's Catch then sees `States.Runtime`. The States error keeps its name.
4. Stopping a parent stops its running `.sync` children, as Step Functions does (that is what the
   integration's `states:StopExecution` permission is for); moto left them running, so an aborted
   roll's wave kept draining next to the roll that took its lock over.

Upstream: moto/stepfunctions/parser (asl/component/state/exec/state_task/service/
state_task_service_sfn.py, state_map/iteration/iteration_worker.py, parser/models.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import botocore.session
from botocore import xform_name
from botocore.model import OperationModel

_MODELS: dict[str, Any] = {}


def _operation(task: Any, service: str | None, action: str | None) -> OperationModel:
    name = task._get_boto_service_name(boto_service_name=service)
    act = task._get_boto_service_action(service_action_name=action)
    if name not in _MODELS:
        _MODELS[name] = botocore.session.get_session().get_service_model(name)
    model = _MODELS[name]
    op = {xform_name(o): o for o in model.operation_names}[act]
    result: OperationModel = model.operation_model(op)
    return result


def _normalise_parameters(
    self: Any,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    self._to_boto_request(parameters, _operation(self, boto_service_name, service_action_name).input_shape)


def _normalise_response(
    self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    self._from_boto_response(response, _operation(self, boto_service_name, service_action_name).output_shape)


def _deepcopy_without_executions(self: Any, memo: dict[int, Any]) -> Any:
    cls = self.__class__
    clone = cls.__new__(cls)
    memo[id(self)] = clone
    for key, value in self.__dict__.items():
        setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
    return clone


def _error_name(error_name: str | None) -> Any:
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    if error_name is not None and error_name.startswith("States."):
        return StatesErrorName.from_name(error_name)
    return CustomErrorName(error_name=error_name)


_STARTED_BY = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"


def _stop_with_children(original: Any) -> Any:
    def stop_execution(self: Any, execution_arn: str) -> Any:
        stopped = original(self, execution_arn)
        for machine in list(self.state_machines):
            for ex in list(machine.executions):
                if ex.status != "RUNNING":
                    continue
                try:
                    parent = json.loads(ex.execution_input or "{}").get(_STARTED_BY)
                except (ValueError, AttributeError):
                    continue
                if parent == execution_arn:
                    stop_execution(self, ex.execution_arn)
        return stopped

    return stop_execution


@contextmanager
def child_executions() -> Iterator[None]:
    from moto.stepfunctions.models import StateMachineInstance, StepFunctionBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    with (
        mock.patch.object(StateTaskService, "_normalise_parameters", _normalise_parameters),
        mock.patch.object(StateTaskService, "_normalise_response", _normalise_response),
        mock.patch.object(StateMachineInstance, "__deepcopy__", _deepcopy_without_executions, create=True),
        mock.patch.object(iteration_worker, "CustomErrorName", _error_name),
        mock.patch.object(
            StepFunctionBackend, "stop_execution", _stop_with_children(StepFunctionBackend.stop_execution)
        ),
    ):
        yield
