"""The run list: what gets pulled in, in which order, and what drops out (§5)."""

from __future__ import annotations

from resumed.providers.rfc822 import parse_pxu
from resumed.providers.solver import solve_run_list
from resumed.providers.units import JobDefinition, make_unit

EXAMPLE = """id: res
plugin: resource
command: echo x: 1

id: a
depends: b
requires: res.x == '1'

id: b
after: c

id: c

id: d
depends: missing-job

id: e
depends: d

id: f
after: g

id: g
after: f

id: s
salvages: a

id: t
before: a

id: u
imports: from com.example.other import thing as other_thing
requires: other_thing.y == '1'

id: m
"""


def _jobs(text: str, namespace: str = "ex") -> dict[str, JobDefinition]:
    jobs = {}
    for record in parse_pxu(text):
        job = make_unit(record.data, namespace, record.origin)
        assert isinstance(job, JobDefinition)
        jobs[job.id] = job
    return jobs


def _short(ids: list[str]) -> list[str]:
    return [i.split("::")[1] for i in ids]


def _example() -> dict[str, JobDefinition]:
    jobs = _jobs(EXAMPLE)
    jobs.update(_jobs("id: thing\nplugin: resource\ncommand: echo y: 1\n", "com.example.other"))
    return jobs


def test_worked_example_gives_current_checkbox_run_list() -> None:
    """§5.9: pulled jobs precede their dependents; `before` puts t before a."""
    run_list = solve_run_list(_example(), ["ex::m"] + [f"ex::{x}" for x in "aefstu"])
    assert _short(run_list) == ["m", "c", "b", "res", "t", "a", "s", "thing", "u"]
    assert [(p.job_id, p.kind) for p in run_list.problems][:3] == [
        ("ex::d", "missing"), ("ex::e", "dropped-dependency"), ("ex::f", "cycle")]
    assert run_list.problems[0].message == "missing dependency: 'ex::missing-job' (depends)"
    assert run_list.problems[2].message == "dependency cycle detected: ex::f -> ex::g -> ex::f"
    assert set(run_list.dropped) == {"ex::d", "ex::e", "ex::f", "ex::g"}


def test_salvages_and_before_pull_nothing() -> None:
    """Desired `[s]` gives `[s]`; desired `[t]` gives `[t]`."""
    assert _short(solve_run_list(_example(), ["ex::s"])) == ["s"]
    assert _short(solve_run_list(_example(), ["ex::t"])) == ["t"]


def test_unknown_requires_name_drops_the_job() -> None:
    """`requires: other_ns.y == '2'` names a missing resource job."""
    jobs = _jobs("id: x\nrequires: other_ns.y == '2'\n\nid: ok\n")
    run_list = solve_run_list(jobs, ["ex::x", "ex::ok"])
    assert _short(run_list) == ["ok"]
    assert run_list.problems[0].message == "missing dependency: 'ex::other_ns' (resource)"


def test_word_lists_allow_quotes_commas_and_comments() -> None:
    """`depends: c, "b" # x` continued by `res` depends on c, b and res, in that order."""
    jobs = _jobs('id: x5\ndepends: c, "b" # comment\n res\n\nid: b\n\nid: c\n\nid: res\n')
    assert _short(solve_run_list(jobs, ["ex::x5"])) == ["c", "b", "res", "x5"]


def test_broken_requires_is_reported_for_run_list_jobs() -> None:
    """PlainBox's readiness pass crashes on these; callers get them by id."""
    jobs = _jobs("id: x\nrequires: res.x == (\n\nid: y\nimports: nonsense\nrequires: r.a == '1'\n")
    run_list = solve_run_list(jobs, ["ex::x", "ex::y"])
    assert _short(run_list) == ["x", "y"]
    assert set(run_list.broken_requires) == {"ex::x", "ex::y"}


def test_groups_run_contiguously() -> None:
    """§5.9 groups: `[p, q, r]` → `q, p, r`; `[p, w, r]` → `q, p, r, w`."""
    jobs = _jobs("id: p\ngroup: G\n\nid: q\n\nid: r\ngroup: G\nafter: q\n\nid: w\n")
    assert _short(solve_run_list(jobs, ["ex::p", "ex::q", "ex::r"])) == ["q", "p", "r"]
    assert _short(solve_run_list(jobs, ["ex::p", "ex::w", "ex::r"])) == ["q", "p", "r", "w"]


def test_before_cycle_drops_the_job_where_it_is_detected() -> None:
    """`x after y` plus `x before y` is a cycle: the job where it is detected drops.

    So does what needs it.
    """
    jobs = _jobs("id: x\nafter: y\nbefore: y\n\nid: y\n\nid: z\n")
    run_list = solve_run_list(jobs, ["ex::x", "ex::z"])
    assert run_list == ["ex::z"]
    assert run_list.problems[0].kind == "order-cycle"
    assert run_list.problems[0].job_id == "ex::y"  # the first element of the cycle's trail
    assert set(run_list.dropped) == {"ex::x", "ex::y"}


def test_missing_before_target_is_logged_not_dropped() -> None:
    """A `before` target no provider defines changes nothing but is reported."""
    run_list = solve_run_list(_jobs("id: x\nbefore: ghost\n"), ["ex::x"])
    assert _short(run_list) == ["x"]
    assert [p.kind for p in run_list.problems] == ["missing-before"]


def test_unknown_desired_job_is_dropped() -> None:
    """A desired id no job has is reported as unknown."""
    run_list = solve_run_list(_jobs("id: x\n"), ["ex::ghost", "ex::x"])
    assert _short(run_list) == ["x"]
    assert run_list.dropped == ["ex::ghost"]


def test_job_pulled_only_by_a_dropped_job_is_not_run() -> None:
    """When the only job needing `g` drops, `g` is not on the run list."""
    jobs = _jobs("id: b\ndepends: g missing\n\nid: g\n\nid: x\n")
    assert _short(solve_run_list(jobs, ["ex::b", "ex::x"])) == ["x"]


def test_after_suspend_parent_runs_before_the_suspend_job() -> None:
    """Current Checkbox gives an also-after-suspend parent a `before` on the suspend job."""
    jobs = _jobs("id: audio/playback\nflags: also-after-suspend\ndepends: audio/detect\n"
                 "\nid: audio/detect\n")
    jobs.update(_jobs("id: suspend/suspend_advanced_auto\n", "com.canonical.certification"))
    desired = ["com.canonical.certification::suspend/suspend_advanced_auto",
               "ex::audio/playback"]
    assert _short(solve_run_list(jobs, desired)) == [
        "audio/detect", "audio/playback", "suspend/suspend_advanced_auto"]


def test_long_dependency_chains_do_not_recurse() -> None:
    """A 5,000-job chain solves without hitting the recursion limit."""
    text = "\n".join(f"id: j{i}\ndepends: j{i - 1}\n" if i else "id: j0\n" for i in range(5000))
    run_list = solve_run_list(_jobs(text), ["ex::j4999"])
    assert run_list[0] == "ex::j0"
    assert run_list[-1] == "ex::j4999"
    assert len(run_list) == 5000
