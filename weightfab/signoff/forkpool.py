"""Independent tasks of one run shared with forked copies of the process (POSIX ``fork``).

The fast DRC (fastdrc.py) reads and proves a file once, then has tens of independent tasks on
that state: the cuts of each set of layers, then the build and check of each template. A forked
child shares the parent's state (copy on write) without pickling it, so those tasks can run on
every core: parent and children take the next task from one shared counter (the most costly
first, as the caller orders them) and each child sends its results back pickled through a pipe.
The results come back in task order, equal to a run in one process: a task must depend only on
the state before the fork and its own input, and return what the caller needs (a child's
other side effects are lost with it).

Without ``fork`` (or with one job, or one task) the tasks run in this process, one after the
other. ``WEIGHTFAB_JOBS`` sets the number of processes (default: the cores this process may run
on, at most ``MAX_JOBS``).
"""
from __future__ import annotations

import os
import pickle
import signal
import traceback

MAX_JOBS = 4


def jobs() -> int:
    """How many processes share the tasks."""
    env = os.environ.get("WEIGHTFAB_JOBS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"WEIGHTFAB_JOBS: not a number of processes: {env!r}") from None
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(MAX_JOBS, n))


def run(fn, tasks: list, n_jobs: int | None = None, done=None) -> list:
    """``[fn(t) for t in tasks]``, the tasks shared by ``n_jobs`` processes (``jobs()`` when
    None). ``done(i, result)`` is called in this process for each result (a child's when it
    ends). A task that raises in a child raises RuntimeError here with the child's traceback."""
    n_jobs = jobs() if n_jobs is None else n_jobs
    n_jobs = min(n_jobs, len(tasks))
    if n_jobs <= 1 or not hasattr(os, "fork"):
        out = []
        for i, t in enumerate(tasks):
            out.append(fn(t))
            if done is not None:
                done(i, out[-1])
        return out
    import multiprocessing
    counter = multiprocessing.get_context("fork").Value("l", 0)

    def take() -> int:
        with counter.get_lock():
            i = counter.value
            counter.value += 1
        return i

    children = []
    for _ in range(n_jobs - 1):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                     # the child: its share, sent back, and gone
            os.close(r)
            _child(fn, tasks, take, w)
        os.close(w)
        children.append((pid, r))
    results: dict = {}
    try:
        while (i := take()) < len(tasks):
            results[i] = fn(tasks[i])
            if done is not None:
                done(i, results[i])
    except BaseException:
        for pid, r in children:          # this process failed: its children are not waited for
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
        raise
    errors = []
    for pid, r in children:
        with os.fdopen(r, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        status, got = pickle.loads(data) if data else ("error", "the child ended without a result")
        if status == "error":
            errors.append(got)
            continue
        for i, res in got:
            results[i] = res
            if done is not None:
                done(i, res)
    if errors:
        raise RuntimeError("a forked task failed:\n" + errors[0])
    return [results[i] for i in range(len(tasks))]


def _child(fn, tasks, take, w: int) -> None:
    code = 0
    try:
        got = []
        while (i := take()) < len(tasks):
            got.append((i, fn(tasks[i])))
        data = pickle.dumps(("ok", got), pickle.HIGHEST_PROTOCOL)
    except BaseException:   # noqa: BLE001 -- reported to the parent, which raises
        data = pickle.dumps(("error", traceback.format_exc()), pickle.HIGHEST_PROTOCOL)
        code = 1
    try:
        with os.fdopen(w, "wb") as f:
            f.write(data)
    finally:
        os._exit(code)       # no atexit handlers, no flush of the parent's buffers
