"""Which Thinks are searched, against which file, and what their sub-agent knows: read from the trajectory.

Every Think of a sub-agent that writes a file is searched against that file's payload: the Think right
before the Write (`kind` "think") and a Think before the sub-agent's Reads (`kind` "think_read"), the
latter scored through everything between it and the payload. What a proposer may be told about a step
(the requirements, the file's plan entry, the files read with their authors' reports) and what it may
rely on (the `Grounding` on the Think before the Write) are read here from the steps' typed records.
"""

from __future__ import annotations

from retrace.data import MAIN_AGENT, Grounding, Plan, Trajectory

READ_NOTE_CHARS = 300  # a file read whose author left no report is shown by its first characters


def search_targets(traj: Trajectory) -> list[tuple[int, int]]:
    """(Think index, Write index) of every Think of a sub-agent followed, in its episode, by a non-empty Write."""
    steps = traj.steps
    next_write: dict[str, int] = {}
    found = []
    for i in range(len(steps) - 1, -1, -1):
        step = steps[i]
        if step.kind == "write" and step.agent != MAIN_AGENT:
            next_write[step.agent] = i
        elif step.kind == "think" and step.agent in next_write and steps[next_write[step.agent]].content.strip():
            found.append((i, next_write[step.agent]))
    return found[::-1]


def searchable_steps(traj: Trajectory) -> list[int]:
    """Indices of the Think steps that are searched (see `search_targets`), in document order."""
    return [think for think, _ in search_targets(traj)]


def think_kind(think: int, write: int) -> str:
    return "think" if write == think + 1 else "think_read"


def grounding_of(traj: Trajectory, write: int) -> Grounding | None:
    """The grounding of the file the Write at `write` writes: carried by a Think of its sub-agent."""
    agent = traj.steps[write].agent
    return next((s.grounding for s in reversed(traj.steps[:write]) if s.agent == agent and s.grounding), None)


def groundings(traj: Trajectory) -> dict[str, Grounding]:
    """Path -> grounding of every written file that has one."""
    found = {}
    for i, step in enumerate(traj.steps):
        if step.kind == "write" and step.path and (grounding := grounding_of(traj, i)) is not None:
            found[step.path] = grounding
    return found


def requirements(traj: Trajectory) -> str:
    return next((s.content for s in traj.steps if s.kind == "requirements"), "")


def plan_record(traj: Trajectory) -> Plan | None:
    return next((s.plan for s in traj.steps if s.kind == "plan" and s.plan is not None), None)


def plan_entry(traj: Trajectory, path: str) -> str:
    """The file's line of the plan (`N. path: description (needs ...)`), else its delegation, else ""."""
    plan = plan_record(traj)
    if plan is not None and path in plan.paths:
        number = plan.paths.index(path) + 1
        return Plan.render_entry(number, plan.entries[number - 1])
    return next((s.content for s in traj.steps if s.kind == "delegate" and s.path == path), "")


def reads(traj: Trajectory, write: int) -> dict[str, str]:
    """The files the writing sub-agent reads in its episode -> their author's report (else the file's head)."""
    agent = traj.steps[write].agent
    reports = {s.path: s.content for s in traj.steps if s.kind == "report" and s.path}
    found = {}
    for step in traj.steps:
        if step.agent == agent and step.kind == "read" and step.path and step.path not in found:
            found[step.path] = reports.get(step.path) or step.content[:READ_NOTE_CHARS]
    return found
