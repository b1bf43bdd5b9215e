"""Watching one sandboxed child: its setup handshake, its output under a cap and a deadline, its end.

Split from `sandbox` along the seam between preparing a run (box, limits, isolation) and supervising
the process once it is started; everything here works on a started `subprocess.Popen`.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time

from retrace.evaluation import sandbox_isolation as iso


def has_exited(pid: int) -> bool:
    """Whether `pid` has exited, without reaping it (its process group cannot be reused meanwhile)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def communicate(proc: subprocess.Popen, stdin: bytes | None, deadline: float,
                 cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin and read both streams until EOF after the child's exit or the deadline.

    Each stream keeps its first `cap` bytes; the rest is read and dropped, so a chatty child is never
    blocked on a full pipe. Returns (stdout, stderr, timed out, truncated).
    """
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    pending = memoryview(stdin or b"")
    timed_out = exited = truncated = False
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        if proc.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            selector.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            events = selector.select(0 if exited else min(remaining, 0.05))
            if exited and not events:
                break  # the run is over; whatever still holds the pipes is killed next
            for key, _ in events:
                if key.fd in buffers:
                    chunk = os.read(key.fd, 1 << 16)
                    buffer = buffers[key.fd]
                    if not chunk:
                        selector.unregister(key.fd)
                    elif len(buffer) < cap:
                        buffer += chunk[:cap - len(buffer)]
                    truncated = truncated or len(buffer) + len(chunk) > cap
                    continue
                try:
                    pending = pending[os.write(key.fd, pending[:1 << 16]):]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    pending = pending[:0]
                if not pending:
                    selector.unregister(key.fd)
                    proc.stdin.close()
            exited = exited or has_exited(proc.pid)
    return bytes(buffers[proc.stdout.fileno()]), bytes(buffers[proc.stderr.fileno()]), timed_out, truncated


def kill_everything(proc: subprocess.Popen, cgroup: str | None, uid: int | None) -> None:
    """SIGKILL the run's process group, then whatever escaped it (by cgroup, else by uid); reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the leader is not reaped yet, so this group is still ours
    proc.wait()
    if cgroup is not None:
        iso.kill_cgroup(cgroup)
    elif uid is not None:
        iso.kill_uid(uid)


def exit_reason(returncode: int, timed_out: bool) -> str:
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "ok"
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


def await_setup(report: int, proc: subprocess.Popen, deadline: float) -> str | None:
    """Wait until the child closes the report pipe (set up) or writes why it could not; the reason or None."""
    with selectors.DefaultSelector() as selector:
        selector.register(report, selectors.EVENT_READ)
        if not selector.select(max(0.0, deadline - time.monotonic())):
            return None  # still setting up at the deadline: the timeout handles it
    return os.read(report, 4096).decode(errors="replace") or None
