"""Run untrusted Python (generated code, a mutated repository's tests) in a fresh, limited subprocess.

Each run gets a fresh `python -I` in a new temporary directory (the box: its files are written there
first, it is the cwd, HOME and TMPDIR, and it is removed afterwards), its own session and process
group, rlimits on address space, CPU time, file size and processes, a scrubbed environment, a
wall-clock timeout after which every process of the run is SIGKILLed, and output captured up to a
cap per stream. Memory is limited per process (RLIMIT_AS), so a run can hold up to
`max_processes * memory_bytes`. Where the OS allows (probed once per process, see `sandbox_isolation()` and
`retrace.evaluation.sandbox_isolation` for what each feature stops), the child also runs as a fresh
unprivileged uid, in its own network namespace (no network at all), with every mount read-only except
the box, and inside a per-run pids cgroup.

What that promises on this kind of machine (Linux, harness running as root): a fork bomb stops at
`max_processes` (pids cgroup, and RLIMIT_NPROC of the run's own uid; as root RLIMIT_NPROC alone is
ignored by the kernel), nothing outside the box can be written, no socket can connect, the harness
cannot be signalled (other uid) and escapers that call `setsid()` are still killed. Where a feature
is missing the sandbox logs a warning once and runs with less. This is not a security boundary
against a determined attacker (kernel bugs, side channels, resource exhaustion below the limits): it
stops the ordinary ways generated code breaks a harness.
"""

from __future__ import annotations

import binascii
import functools
import logging
import marshal
import os
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

from retrace.evaluation import sandbox_child as child
from retrace.evaluation import sandbox_isolation as iso
from retrace.evaluation import sandbox_process as watch
from retrace.evaluation.sandbox_isolation import Isolation

logger = logging.getLogger(__name__)

MAIN_FILE = "__sandbox_main__.py"


def _launcher() -> str:
    """The -c text: `sandbox_child` compiled here once, unpacked in its own namespace there, then `main()`."""
    with open(child.__file__, encoding="utf-8") as handle:
        code = compile(handle.read(), child.__file__, "exec")
    packed = binascii.b2a_base64(marshal.dumps(code), newline=False).decode("ascii")
    return (f"import binascii, marshal; launch = {{'__name__': 'sandbox_child'}}; "
            f"exec(marshal.loads(binascii.a2b_base64({packed!r})), launch); launch['main']()")


LAUNCHER = _launcher()
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


class SandboxError(RuntimeError):
    """The sandbox itself failed (bad request, or the child could not be set up), not the code run in it."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0                 # wall clock, from start to SIGKILL of the whole run
    cpu_s: int = 10                         # RLIMIT_CPU per process (SIGXCPU, then SIGKILL a second later)
    memory_bytes: int = 1 << 30             # RLIMIT_AS per process
    file_size_bytes: int = 16 << 20         # RLIMIT_FSIZE: largest file a process may write
    max_processes: int = 32                 # processes and threads of the run (pids cgroup, RLIMIT_NPROC)
    network: bool = False                   # True: share the host's network
    output_bytes: int = 1 << 20             # per stream kept; the rest is read and dropped

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.cpu_s < 1 or self.memory_bytes < 32 << 20 or self.file_size_bytes < 0 \
                or self.max_processes < 1 or self.output_bytes < 1:
            raise ValueError(f"bad sandbox limits: {self}")


@dataclass
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    reason: str                             # "ok" | "exit <code>" | "timeout" | "killed by signal <name>"
    output_truncated: bool = False          # a stream passed `output_bytes`; only its start is kept

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out


# --- what this machine allows ------------------------------------------------------------------

PROBE_CODE = """\
import os, socket, sys
outside = os.path.dirname(os.getcwd())
try:
    open(os.path.join(outside, 'retrace-probe-%d' % os.getpid()), 'w').close()
    os.remove(os.path.join(outside, 'retrace-probe-%d' % os.getpid()))
    writes_outside = True
except OSError:
    writes_outside = False
with open('/proc/net/dev') as handle:
    interfaces = [line.split(':')[0].strip() for line in handle if ':' in line]
print(os.getuid(), int(writes_outside), ','.join(interfaces))
"""


def _candidates(root: bool) -> list[Isolation]:
    """From the most isolated to the least, for the probe to try in order."""
    if not sys.platform.startswith("linux"):
        return [Isolation(root=root)]
    trees = iso.hidden_trees(iso.interpreter_trees() + [tempfile.gettempdir()])
    cgroup = next((base for base in iso.cgroup_bases() if iso.cgroup_base_usable(base)), None)
    if cgroup is not None:
        iso.remove_stale_cgroups(cgroup)
    if root:
        reachable = not trees  # the interpreter can be started by another uid without covering anything
        options = [Isolation(root, own_uid=True, network_namespace=True, read_only_mounts=True,
                             pids_cgroup=cgroup, hidden=trees),
                   Isolation(root, own_uid=reachable, network_namespace=True, pids_cgroup=cgroup),
                   Isolation(root, own_uid=reachable, pids_cgroup=cgroup)]
    else:
        options = [Isolation(root, user_namespace=True, network_namespace=True, read_only_mounts=True,
                             pids_cgroup=cgroup),
                   Isolation(root, user_namespace=True, network_namespace=True, pids_cgroup=cgroup)]
    return options + [Isolation(root, pids_cgroup=cgroup), Isolation(root)]


def _verify(candidate: Isolation) -> str | None:
    """Why `candidate` does not work here (None: it does), from one probe run under it."""
    try:
        result = _run_in_box(PROBE_CODE, argv=(), files=None, sys_path=(), limits=SandboxLimits(timeout_s=20),
                             stdin=None, site_packages=False, isolation=candidate)
    except SandboxError as exc:
        return str(exc)
    if not result.passed:
        return f"probe {result.reason}: {result.stderr.strip()[-300:]}"
    uid, writes_outside, interfaces = result.stdout.split()
    if candidate.own_uid and int(uid) == 0:
        return "the child still ran as root"
    if candidate.read_only_mounts and writes_outside == "1":
        return "the child could still write next to its box"
    if candidate.network_namespace and interfaces != "lo":
        return f"the child still saw network interfaces {interfaces}"
    return None


@functools.lru_cache(maxsize=1)
def sandbox_isolation() -> Isolation:
    """The most isolated setup that works here, probed once per process; missing features logged."""
    root = os.geteuid() == 0
    notes = []
    for candidate in _candidates(root):
        problem = _verify(candidate)
        if problem is None:
            chosen = replace(candidate, notes=tuple(notes))
            break
        notes.append(f"{candidate.describe() | {'notes': None}}: {problem}")
    else:
        raise SandboxError("the sandbox cannot start Python at all here:\n" + "\n".join(notes))
    missing = [name for name, on in (("a network namespace", chosen.network_namespace),
                                     ("read-only mounts outside the box", chosen.read_only_mounts),
                                     ("a pids cgroup", chosen.pids_cgroup is not None)) if not on]
    if root and not chosen.own_uid:
        missing.append("an unprivileged uid (RLIMIT_NPROC is not enforced for root)")
    if missing:
        logger.warning("sandbox: running without %s on this machine (%s)", ", ".join(missing),
                       "; ".join(notes) or "not available")
    logger.info("sandbox isolation: %s", chosen.describe())
    return chosen


# --- one run -----------------------------------------------------------------------------------

def _box_path(box: str, relative: str, what: str) -> str:
    parts = PurePosixPath(relative).parts
    if not relative or PurePosixPath(relative).is_absolute() or ".." in parts or os.pathsep in relative:
        raise SandboxError(f"{what} {relative!r} must be a relative path inside the sandbox")
    return os.path.join(box, *parts)


def _write_files(box: str, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = _box_path(box, relative, "file")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)


def _give_to(box: str, uid: int) -> None:
    for directory, _, names in os.walk(box):
        os.chown(directory, uid, uid)
        for name in names:
            os.chown(os.path.join(directory, name), uid, uid)


def _environment(box: str) -> dict[str, str]:
    return {"PATH": SAFE_PATH, "HOME": box, "TMPDIR": box, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "OMP_NUM_THREADS": "1"}


def _rlimits(limits: SandboxLimits, own_uid: bool) -> tuple[tuple[int, int, int], ...]:
    values = [(resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
              (resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1),
              (resource.RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes),
              (resource.RLIMIT_CORE, 0, 0)]
    if own_uid:  # per-uid count: only meaningful for a uid nothing else runs as
        values.append((resource.RLIMIT_NPROC, limits.max_processes, limits.max_processes))
    return tuple(values)


def _execute(interpreter: list[str], script: list[str], box: str, limits: SandboxLimits, stdin: str | None,
             isolation: Isolation) -> SandboxResult:
    """Run `interpreter PLAN script...` in `box` under `isolation`, killing everything of it at the end."""
    uid = random.SystemRandom().randrange(*iso.UID_RANGE) if isolation.own_uid else None
    if uid is not None:
        _give_to(box, uid)
    cgroup = (iso.make_cgroup(isolation.pids_cgroup, f"retrace-sandbox-{os.getpid()}-{secrets.token_hex(6)}",
                              limits.max_processes) if isolation.pids_cgroup else None)
    report_read, report_write = os.pipe()
    plan = child.encode_plan(box=box, report_fd=report_write, uid=uid, cgroup=cgroup,
                             flags=isolation.unshare_flags(limits.network),
                             hidden=isolation.hidden if uid is not None else (),
                             rlimits=_rlimits(limits, uid is not None))
    start = time.monotonic()
    proc = None
    try:
        proc = subprocess.Popen([*interpreter, plan, *script],
                                cwd=box, env=_environment(box), start_new_session=True, pass_fds=(report_write,),
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(report_write)
        report_write = -1
        failure = watch.await_setup(report_read, proc, start + limits.timeout_s)
        if failure is not None:
            raise SandboxError(f"could not set up the sandboxed child: {failure}")
        stdout, stderr, timed_out, truncated = watch.communicate(proc, stdin.encode() if stdin is not None else None,
                                                            start + limits.timeout_s, limits.output_bytes)
    finally:
        if proc is not None:
            watch.kill_everything(proc, cgroup, uid)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for fd in (report_read, report_write):
            if fd >= 0:
                os.close(fd)
        if cgroup is not None and os.path.isdir(cgroup):
            iso.kill_cgroup(cgroup)
    return SandboxResult(returncode=proc.returncode, stdout=stdout.decode("utf-8", errors="replace"),
                         stderr=stderr.decode("utf-8", errors="replace"), timed_out=timed_out,
                         wall_s=time.monotonic() - start, reason=watch.exit_reason(proc.returncode, timed_out),
                         output_truncated=truncated)


def _remove_box(box: str) -> None:
    def retry_writable(function, path, _):
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        function(path)

    shutil.rmtree(box, onerror=retry_writable)


def _run_in_box(code: str | None, *, argv: Sequence[str], files: Mapping[str, str] | None, sys_path: Sequence[str],
                limits: SandboxLimits, stdin: str | None, site_packages: bool, isolation: Isolation) -> SandboxResult:
    if code is None and not argv:
        raise SandboxError("run_python needs `code` or an `argv` whose first item is the script to run")
    box = tempfile.mkdtemp(prefix="retrace-sandbox-")
    try:
        if files and MAIN_FILE in files and code is not None:
            raise SandboxError(f"file name {MAIN_FILE} is reserved for `code`")
        _write_files(box, {**(files or {}), **({MAIN_FILE: code} if code is not None else {})})
        for entry in sys_path:
            _box_path(box, entry, "sys_path entry")
        script = [MAIN_FILE, *argv] if code is not None else list(argv)
        _box_path(box, script[0], "script")
        interpreter = [sys.executable, "-I", "-B", "-X", "utf8", *([] if site_packages else ["-S"]), "-c", LAUNCHER]
        return _execute(interpreter, [os.pathsep.join(sys_path), *script], box, limits, stdin, isolation)
    finally:
        _remove_box(box)


def run_python(code: str | None = None, *, argv: Sequence[str] = (), files: Mapping[str, str] | None = None,
               sys_path: Sequence[str] = (), limits: SandboxLimits = SandboxLimits(), stdin: str | None = None,
               site_packages: bool = True) -> SandboxResult:
    """Run `code` (or the box-relative script `argv[0]`) as `__main__` in a fresh sandbox; never raises for
    what the code does, only SandboxError for a bad request or a child that could not be set up.

    `files` ({relative path: text}) are written to the box first; `sys_path` entries (relative to the
    box) go first on sys.path; `argv` becomes sys.argv after the script name. `site_packages=False`
    starts Python with -S (stdlib only, a few ms faster).
    """
    return _run_in_box(code, argv=argv, files=files, sys_path=sys_path, limits=limits, stdin=stdin,
                       site_packages=site_packages, isolation=sandbox_isolation())


def run_many(jobs: Sequence[Mapping[str, Any]], max_workers: int | None = None,
             desc: str = "sandbox") -> list[SandboxResult]:
    """`run_python(**job)` for every job, `max_workers` at a time (default: the CPU count), in job order."""
    from tqdm.auto import tqdm

    sandbox_isolation()  # probe once, before the threads race to do it
    workers = max(1, max_workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_python, **job) for job in jobs]
        with tqdm(total=len(futures), desc=desc, unit="run", disable=len(futures) < 20) as progress:
            for future in futures:
                future.add_done_callback(lambda _: progress.update())
            return [future.result() for future in futures]
