"""Mermaid state diagrams generated from a workflow's own ``transitions`` Machine."""

from __future__ import annotations

from states.workflow import Workflow


def mermaid(workflow: Workflow) -> str:
    """A ``stateDiagram-v2`` with zh-CN state and event labels, read off the built machine."""
    lines = ["stateDiagram-v2"]
    for state, label in workflow.states.items():
        lines.append(f"    {state}: {state} {label}")
    initial = workflow.create_event.branches[0].dest
    lines.append(f"    [*] --> {initial}: {workflow.create_event.name} {workflow.create_event.label}")
    seen: set[tuple[str, str, str]] = set()
    for name, event in workflow.machine.events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                edge = (source, transition.dest or source, name)
                if edge in seen:
                    continue
                seen.add(edge)
                lines.append(f"    {edge[0]} --> {edge[1]}: {name} {workflow.event_label(name)}")
    for state in sorted(workflow.terminal):
        lines.append(f"    {state} --> [*]")
    return "\n".join(lines) + "\n"
