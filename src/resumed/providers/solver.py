"""The run-list solver, with current Checkbox's relations (reference §5).

`depends`, `after` and the resource jobs named by `requires` pull jobs in;
`before` (the target runs after this job, when both are pulled) and `group`
(members run contiguously) only order them. Jobs reaching a missing id or a
dependency cycle are dropped, and so is the job where an ordering (`before`)
cycle is detected, as Checkbox does. The order is deterministic: desired-list
order, each job preceded by what it needs in the order its fields name them
(`depends`, then `after`, then `requires`). Every pass is linear in the size of
the pulled graph; only an ordering cycle causes another round.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from resumed.providers.units import JobDefinition

_GRAY, _GOOD, _BAD = 1, 2, 3

# A node of the ordering graph: a job id, or ("group", name) for a whole group.
_Node = str | tuple[str, str]
_N = TypeVar("_N", bound=Hashable)


@dataclass(frozen=True, slots=True)
class DependencyProblem:
    """One problem met while solving.

    `kind` is `unknown` (a desired id no job has), `missing`, `cycle`,
    `dropped-dependency`, `order-cycle` or `missing-before` (logged only;
    nothing is dropped).
    """

    job_id: str
    kind: str
    message: str


class RunList(list[str]):
    """The run list (job ids in order), plus what was dropped and why.

    `dropped`: ids of jobs removed from the run list (desired or pulled);
    `problems`: `DependencyProblem`s, in the order they were met;
    `broken_requires`: run-list jobs whose `requires`/`imports` cannot be compiled
    (PlainBox raises from its readiness pass for those) → the compile error.
    """

    def __init__(
        self,
        ids: Iterable[str] = (),
        problems: Sequence[DependencyProblem] = (),
        dropped: Sequence[str] = (),
        broken_requires: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(ids)
        self.problems = list(problems)
        self.dropped = list(dropped)
        self.broken_requires = dict(broken_requires or {})


def solve_run_list(jobs: Mapping[str, JobDefinition], desired: Sequence[str]) -> RunList:
    """Solve the run list of `desired` (mandatory jobs first, then desired) over `jobs`."""
    excluded: dict[str, DependencyProblem] = {}
    while True:
        pulled, problems, dropped = _pull(jobs, desired, excluded)
        ordered, order_problems, cycle = _order(jobs, pulled)
        if cycle is None:
            break
        excluded[cycle.job_id] = cycle
    all_problems = list(excluded.values()) + problems + order_problems
    dropped = list(dict.fromkeys([*excluded, *dropped]))
    broken = {i: e for i in ordered if (e := jobs[i].requires_error) is not None}
    return RunList(ordered, all_problems, dropped, broken)


def _pull(
    jobs: Mapping[str, JobDefinition], desired: Sequence[str], excluded: Mapping[str, object]
) -> tuple[list[str], list[DependencyProblem], list[str]]:
    """Mark every job reaching a missing id or a cycle as bad; pull the good ones."""
    state: dict[str, int] = {}
    problems: list[DependencyProblem] = []
    dropped: list[str] = []

    finished: list[str] = []

    for root in desired:
        job = jobs.get(root)
        if job is None or root in excluded:
            if root not in excluded and state.get(root) is None:
                state[root] = _BAD
                problems.append(DependencyProblem(root, "unknown", f"unknown job {root!r}"))
                dropped.append(root)
            continue
        if root in state:
            continue
        edges = job.pull_edges
        if not edges:  # a leaf: good at once (what the walk below does, without the walk)
            state[root] = _GOOD
            finished.append(root)
            continue
        state[root] = _GRAY
        stack = [(root, iter(edges))]
        position = {root: 0}
        bad: dict[str, DependencyProblem] = {}
        while stack:
            node, deps = stack[-1]
            for dep, relation in deps:
                if dep not in jobs or (excluded and dep in excluded):
                    bad.setdefault(node, DependencyProblem(
                        node, "missing", f"missing dependency: {dep!r} ({relation})"))
                    continue
                seen = state.get(dep)
                if seen is None:
                    state[dep] = _GRAY
                    position[dep] = len(stack)
                    stack.append((dep, iter(jobs[dep].pull_edges)))
                    break
                if seen == _GRAY:
                    trail = [n for n, _ in stack[position[dep]:]] + [dep]
                    problems.append(DependencyProblem(
                        dep, "cycle", "dependency cycle detected: " + " -> ".join(trail)))
                    bad.setdefault(node, DependencyProblem(
                        node, "dropped-dependency", f"dependency {dep!r} is in a cycle"))
                elif seen == _BAD:
                    bad.setdefault(node, DependencyProblem(
                        node, "dropped-dependency", f"dependency {dep!r} was dropped"))
            else:
                stack.pop()
                del position[node]
                if node in bad:
                    state[node] = _BAD
                    problems.append(bad[node])
                    dropped.append(node)
                    if stack:
                        parent = stack[-1][0]
                        bad.setdefault(parent, DependencyProblem(
                            parent, "dropped-dependency", f"dependency {node!r} was dropped"))
                else:
                    state[node] = _GOOD
                    finished.append(node)
    if not dropped:
        return finished, problems, dropped  # nothing dropped: the walk's post-order stands
    pulled: list[str] = []
    done: set[str] = set()
    for root in desired:
        if state.get(root) == _GOOD and root not in done:
            pulled.extend(_post_order(root, lambda n: jobs[n].pull_ids, done))
    return pulled, problems, dropped


def _post_order(
    root: str, successors: Callable[[str], Iterable[str]], done: set[str]
) -> list[str]:
    """Post-order of an acyclic walk from `root`, skipping (and filling) `done`."""
    out: list[str] = []
    done.add(root)
    stack = [(root, iter(successors(root)))]
    while stack:
        node, it = stack[-1]
        for nxt in it:
            if nxt not in done:
                done.add(nxt)
                stack.append((nxt, iter(successors(nxt))))
                break
        else:
            stack.pop()
            out.append(node)
    return out


def _order(
    jobs: Mapping[str, JobDefinition], pulled: list[str]
) -> tuple[list[str], list[DependencyProblem], DependencyProblem | None]:
    """Order the pulled jobs with `before` and `group`; report the first ordering cycle."""
    members = set(pulled)
    problems: list[DependencyProblem] = []
    before_refs: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    for job_id in pulled:
        job = jobs[job_id]
        for target in job.before_ids:
            if target in members:
                before_refs.setdefault(target, []).append(job_id)
            elif target not in jobs:
                problems.append(DependencyProblem(
                    job_id, "missing-before", f"missing 'before' target {target!r}"))
        group = job.group
        if group is not None:
            groups.setdefault(group, []).append(job_id)

    def deps(job_id: str) -> Sequence[str]:
        # Everything a pulled job pulls is pulled too.
        refs = before_refs.get(job_id)
        pull_ids = jobs[job_id].pull_ids
        return pull_ids if refs is None else [*pull_ids, *refs]

    if not groups and not before_refs:
        return pulled, problems, None  # the pull order already satisfies every relation

    def key(job_id: str) -> _Node:
        group = jobs[job_id].group
        return ("group", group) if group is not None else job_id

    def outer_deps(node: _Node) -> list[_Node]:
        if isinstance(node, tuple):
            inner = groups[node[1]]
            found = (key(d) for m in inner for d in deps(m))
            return list(dict.fromkeys(k for k in found if k != node))
        return list(dict.fromkeys(key(d) for d in deps(node)))

    outer = list(dict.fromkeys(key(job_id) for job_id in pulled))
    ordered_outer, cycle = _ordered(outer, outer_deps)
    if cycle is not None:
        first = cycle[0]
        affected = groups[first[1]][0] if isinstance(first, tuple) else first
        return [], problems, _cycle_problem(affected, cycle)
    result: list[str] = []
    for node in ordered_outer:
        if not isinstance(node, tuple):
            result.append(node)
            continue
        inner = groups[node[1]]
        inside = set(inner)
        # The lambda is called only within this iteration, with this `inside`.
        ordered_inner, inner_cycle = _ordered(
            inner, lambda m: [d for d in deps(m) if d in inside]  # noqa: B023
        )
        if inner_cycle is not None:
            return [], problems, _cycle_problem(inner_cycle[0], inner_cycle)
        result.extend(ordered_inner)
    return result, problems, None


def _cycle_problem(affected: str, cycle: Sequence[_Node]) -> DependencyProblem:
    names = [f"group {n[1]}" if isinstance(n, tuple) else str(n) for n in cycle]
    return DependencyProblem(
        affected, "order-cycle", "dependency cycle detected: " + " -> ".join(names))


def _ordered(
    nodes: Sequence[_N], successors: Callable[[_N], Iterable[_N]]
) -> tuple[list[_N], list[_N] | None]:
    """DFS post-order over `nodes` in order; on a cycle, return its trail instead."""
    state: dict[_N, int] = {}
    out: list[_N] = []
    for root in nodes:
        if root in state:
            continue
        state[root] = _GRAY
        stack = [(root, iter(successors(root)))]
        while stack:
            node, it = stack[-1]
            for nxt in it:
                seen = state.get(nxt)
                if seen is None:
                    state[nxt] = _GRAY
                    stack.append((nxt, iter(successors(nxt))))
                    break
                if seen == _GRAY:
                    trail = [n for n, _ in stack]
                    return out, trail[trail.index(nxt):] + [nxt]
            else:
                stack.pop()
                state[node] = _GOOD
                out.append(node)
    return out, None
