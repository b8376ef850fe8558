"""Fault injection for tests and the fault benchmark: die, or run out of disk, at a chosen point.

Never active unless ``REWARDLAB_FAULT`` is set. The code passes named *points*: ``write`` (every
atomic file or folder write, after its data is written to the temporary name and before the
rename that publishes it) and ``model`` (every reward model built: a strength job, a group or
method model, the final model, or an encoder for preparing pairs)::

    REWARDLAB_FAULT=POINT[~TEXT]:after=N[:ACTION]

fires the N-th time (counting from 0) this process passes ``POINT`` (with ``~TEXT``: counting
only passes whose detail, e.g. the path being written, contains TEXT). ``ACTION`` is ``kill``
(default: SIGKILL to itself, as ``kill -9`` would), ``enospc`` (raise "no space left on device"
as the disk would) or ``stop`` (SIGSTOP to itself: a live process holding its folder lock, until
someone sends SIGCONT or SIGKILL). With ``REWARDLAB_FAULT_TRACE=FILE`` every point passed is
appended to FILE as ``POINT<TAB>DETAIL`` (the target of a write), so a benchmark can list the
points of a run and aim at each.
"""

from __future__ import annotations

import errno
import os
import signal

__all__ = ["ENV", "TRACE_ENV", "fault_point", "parse_fault", "reset_faults"]

ENV = "REWARDLAB_FAULT"
TRACE_ENV = "REWARDLAB_FAULT_TRACE"
ACTIONS = ("kill", "enospc", "stop")

_passed: dict[str, int] = {}


def parse_fault(spec: str) -> tuple[str, str, int, str]:
    """``(point, text, n, action)`` of a ``REWARDLAB_FAULT`` value (``text`` empty when not
    given), with a clear error when malformed."""
    parts = spec.split(":")
    ok = len(parts) in (2, 3) and parts[1].startswith("after=") and parts[1][6:].isdigit()
    action = parts[2] if len(parts) == 3 else "kill"
    if not ok or action not in ACTIONS:
        raise ValueError(f"{ENV}={spec!r}: expected POINT[~TEXT]:after=N[:ACTION] with ACTION "
                         f"one of {', '.join(ACTIONS)}")
    point, _, text = parts[0].partition("~")
    return point, text, int(parts[1][6:]), action


def fault_point(point: str, detail: object = "") -> None:
    """Pass point ``point`` (``detail``: what is being done there, for the trace)."""
    spec = os.environ.get(ENV)
    trace = os.environ.get(TRACE_ENV)
    if not spec and not trace:
        return
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(f"{point}\t{detail}\n")
    if not spec:
        return
    target, text, n, action = parse_fault(spec)
    if target != point or text not in str(detail):
        return
    count = _passed.get(point, 0)
    _passed[point] = count + 1
    if count != n:
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(detail))
    os.kill(os.getpid(), signal.SIGSTOP if action == "stop" else signal.SIGKILL)


def reset_faults() -> None:
    """Forget how often each point was passed (for tests that inject faults in-process)."""
    _passed.clear()
