"""Before anything is paused: a roll outside its maintenance windows (or paused) waits; abort ends it."""

from eks_rolling.models import AwaitWindowInput
from eks_rolling.services.gate import await_window
from lambdas._runtime import step_handler

handler = step_handler(AwaitWindowInput, await_window)
