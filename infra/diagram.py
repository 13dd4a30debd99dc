"""Render the state machine (statemachine/rolling_upgrade.asl.json) as Markdown with Mermaid.

    python -m infra.diagram > docs/state-machine.md

Map states become subgraphs holding their iteration's states; solid arrows are `Next`/`Default`
and Choice rules, dashed arrows are `Catch`. A test keeps docs/state-machine.md in step with the
ASL. Pure Python: no CDK, no Node.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from eks_rolling.steps import STEPS

ROOT: Final = Path(__file__).resolve().parents[1]
ASL: Final = ROOT / "statemachine" / "rolling_upgrade.asl.json"

# Task states' Lambda, by placeholder.
HANDLERS: Final = {f"${{{s.placeholder}}}": s.handler for s in STEPS}


def _lambda_error(name: str) -> bool:
    """Lambda's own errors (service, throttling, not-ready) and the Task timeout: every Task retries
    them (tests/contract/test_lambda_retries.py), so the table leaves them out."""
    return name.startswith("Lambda.") or name == "States.Timeout"


_OPS: Final = {
    "BooleanEquals": "==",
    "StringEquals": "==",
    "NumericEquals": "==",
    "NumericGreaterThan": ">",
    "NumericGreaterThanEquals": ">=",
    "NumericLessThan": "<",
    "NumericLessThanEquals": "<=",
    "StringMatches": "matches",
    "TimestampGreaterThan": ">",
    "TimestampLessThan": "<",
}


def _text(value: str) -> str:
    """Mermaid-safe label text (inside double quotes)."""
    return value.replace('"', "#quot;").replace("|", "#124;").replace("<", "#lt;").replace(">", "#gt;")


def condition(rule: Mapping[str, Any]) -> str:
    """A Choice rule as a short expression: `$.plan.has_work == false`."""
    for combinator, joiner in (("And", " and "), ("Or", " or ")):
        if combinator in rule:
            return "(" + joiner.join(condition(r) for r in rule[combinator]) + ")"
    if "Not" in rule:
        return f"not {condition(rule['Not'])}"
    variable = rule.get("Variable", "?")
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key == "IsPresent":
            return f"{variable} {'present' if value else 'absent'}"
        if key.startswith("Is"):
            return f"{variable} {key[2:].lower()}" if value else f"{variable} not {key[2:].lower()}"
        op = _OPS.get(key.removesuffix("Path"), key)
        shown = json.dumps(value) if not key.endswith("Path") else value
        return f"{variable} {op} {shown}"
    return "?"


def _node(node_id: str, name: str, state: Mapping[str, Any]) -> str:
    kind = state["Type"]
    label = _text(name)
    if kind == "Task":
        handler = HANDLERS.get(state.get("Resource", ""))
        step = f"<br/><i>{_text(handler.split('.')[1])}</i>" if handler else ""
        return f'{node_id}["{label}{step}"]'
    shapes = {
        "Choice": '{{"{label}"}}',
        "Wait": '{{{{"{label}"}}}}',
        "Pass": '(["{label}"])',
        "Succeed": '(("{label}"))',
        "Fail": '((("{label}")))',
    }
    return node_id + shapes.get(kind, '["{label}"]').format(label=label)


class _Renderer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.classes: dict[str, list[str]] = {}

    def states(self, states: Mapping[str, Any], prefix: str, indent: str) -> None:
        ids = {name: f"{prefix}{_ident(name)}" for name in states}
        for name, state in states.items():
            node_id = ids[name]
            if state["Type"] == "Map":
                self._map(node_id, name, state, indent)
            else:
                self.lines.append(indent + _node(node_id, name, state))
                self.classes.setdefault(state["Type"].lower(), []).append(node_id)
        for name, state in states.items():
            for edge in self._edges(ids[name], state, ids):
                self.lines.append(indent + edge)

    def _map(self, node_id: str, name: str, state: Mapping[str, Any], indent: str) -> None:
        items = state.get("ItemsPath", "$")
        concurrency = state.get("MaxConcurrency", 0)
        how = {0: "all items at once", 1: "one at a time"}.get(concurrency, f"up to {concurrency} at once")
        title = _text(f"{name}: Map over {items}, {how}")
        processor = state.get("ItemProcessor") or state["Iterator"]
        self.lines.append(f'{indent}subgraph {node_id}["{title}"]')
        self.lines.append(f"{indent}  direction TB")
        start_id = f"{node_id}__start"
        self.lines.append(f'{indent}  {start_id}(("start"))')
        self.classes.setdefault("start", []).append(start_id)
        self.lines.append(f"{indent}  {start_id} --> {node_id}__{_ident(processor['StartAt'])}")
        self.states(processor["States"], f"{node_id}__", indent + "  ")
        self.lines.append(f"{indent}end")

    @staticmethod
    def _edges(node_id: str, state: Mapping[str, Any], ids: Mapping[str, str]) -> Iterator[str]:
        for rule in state.get("Choices", []):
            yield f'{node_id} -->|"{_text(condition(rule))}"| {ids[rule["Next"]]}'
        if "Default" in state:
            yield f'{node_id} -->|"otherwise"| {ids[state["Default"]]}'
        if "Next" in state:
            yield f"{node_id} --> {ids[state['Next']]}"
        for catch in state.get("Catch", []):
            errors = ", ".join(catch["ErrorEquals"])
            yield f'{node_id} -.->|"{_text(errors)}"| {ids[catch["Next"]]}'


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def mermaid(definition: Mapping[str, Any]) -> str:
    r = _Renderer()
    r.lines.append("flowchart TD")
    r.lines.append('  __start(("start"))')
    r.classes["start"] = ["__start"]
    r.lines.append(f"  __start --> {_ident(definition['StartAt'])}")
    r.states(definition["States"], "", "  ")
    styles = {
        "start": "fill:#333,color:#fff,stroke:#333",
        "task": "fill:#e8f0fe,stroke:#4a6fa5",
        "choice": "fill:#fff4e5,stroke:#c77c02",
        "wait": "fill:#f3f3f3,stroke:#888",
        "succeed": "fill:#e6f4ea,stroke:#2e7d32",
        "fail": "fill:#fdecea,stroke:#c62828",
        "pass": "fill:#ffffff,stroke:#888",
    }
    for cls, style in styles.items():
        if r.classes.get(cls):
            r.lines.append(f"  classDef {cls} {style}")
            r.lines.append(f"  class {','.join(r.classes[cls])} {cls}")
    return "\n".join(r.lines)


def _tasks(states: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        if state["Type"] == "Map":
            processor = state.get("ItemProcessor") or state["Iterator"]
            yield from _tasks(processor["States"])


def task_table(definition: Mapping[str, Any]) -> str:
    rows = [
        "| State | Lambda handler | Retried on (besides Lambda errors and States.Timeout) | Caught |",
        "|---|---|---|---|",
    ]
    for name, state in _tasks(definition["States"]):
        handler = HANDLERS.get(state.get("Resource", ""), state.get("Resource", ""))
        retried = sorted(
            {e for r in state.get("Retry", []) for e in r["ErrorEquals"] if not _lambda_error(e)}
        )
        caught = [f"{', '.join(c['ErrorEquals'])} → {c['Next']}" for c in state.get("Catch", [])]
        rows.append(
            f"| {name} | `{handler}` | {', '.join(retried) or '—'} | {'; '.join(caught) or '— (the Map fails)'} |"
        )
    return "\n".join(rows)


def render(definition: Mapping[str, Any], source: str = "statemachine/rolling_upgrade.asl.json") -> str:
    timeout = definition.get("TimeoutSeconds")
    return "\n".join(
        [
            "# State machine",
            "",
            f"<!-- Generated from {source} by `python -m infra.diagram > docs/state-machine.md`;"
            " do not edit by hand (tests/infra checks it is current). -->",
            "",
            f"`{source}`, as deployed by `infra/workflow.py`. Solid arrows are `Next`, Choice rules and"
            " their `otherwise` branch; dashed arrows are `Catch` (error names on the arrow). Map states"
            " are boxes holding the states each item runs through; an error a Task inside a Map does"
            " not catch fails the whole Map, whose own `Catch` applies. Lambda's errors (service errors,"
            " throttling, a function not ready yet: up to 875 s of retries) and `States.Timeout`, which"
            " every Task retries, are left out of the table."
            + (f" An execution times out after {timeout} s (`TimeoutSeconds`)." if timeout else ""),
            "",
            "```mermaid",
            mermaid(definition),
            "```",
            "",
            "## Tasks",
            "",
            task_table(definition),
            "",
        ]
    )


def main() -> int:
    sys.stdout.write(render(json.loads(ASL.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
