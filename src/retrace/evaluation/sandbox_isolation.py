"""What the sandbox can take away from a child on this machine, probed once, applied before `exec`.

Linux only, stdlib only. The features, each used where the OS allows it (`probe_isolation` finds out):

- `own_uid` (parent is root): the child runs as a fresh, random, unprivileged uid/gid with no
  supplementary groups. Root ignores RLIMIT_NPROC and may write and signal anything; an unprivileged
  uid of its own obeys RLIMIT_NPROC (counted per uid, so parallel sandboxes do not share the budget),
  cannot signal the harness (other uid), and cannot write files it does not own.
- `network_namespace`: a new network namespace with only a downed loopback, so no socket can
  connect anywhere, not even to 127.0.0.1 of the host.
- `read_only_mounts`: a private mount namespace in which every mount is read-only except a bind
  mount of the sandbox's own directory; world-writable places (/tmp, /dev/shm) are read-only too.
  Directories the unprivileged uid could not traverse (e.g. /root holding a pyenv interpreter) are
  covered by a small tmpfs that shows only the interpreter's own tree, so the child can start Python
  and sees nothing else there.
- `pids_cgroup`: a per-run pids cgroup (v1 or v2) with `pids.max`, enforced even for root, which also
  lists every process of the run so escapers that called `setsid()` are killed at the end.
- `user_namespace` (parent is not root): an unprivileged user namespace used to get the network and
  mount namespaces; the uid is then the caller's own.

Always: a new session and process group, rlimits on address space, CPU seconds, file size and core
dumps (RLIMIT_NPROC only with `own_uid`), `no_new_privs` (set-uid binaries gain nothing) and a parent
death signal. None of this is a security boundary against kernel exploits or side channels; it stops
the ordinary ways generated code breaks a harness: fork bombs, memory hogs, stray writes, network use,
killing the harness.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import stat
import sys
from dataclasses import dataclass, field

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 1 << 18
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
OPEN_TREE_CLONE, MOVE_MOUNT_F_EMPTY_PATH = 1, 4
MOUNT_ATTR_RDONLY = 0x1
# Syscalls numbered from 424 up share their numbers on every architecture Linux supports but alpha.
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
UID_RANGE = (2_000_000_000, 2_100_000_000)  # far above any real account or subuid range


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


@dataclass(frozen=True)
class Isolation:
    """The features a child gets on this machine (see the module docstring); `notes` say what is missing."""

    root: bool
    own_uid: bool = False
    network_namespace: bool = False
    read_only_mounts: bool = False
    user_namespace: bool = False
    pids_cgroup: str | None = None              # directory under which each run gets its own cgroup
    hidden: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (covered directory, trees shown inside it)
    notes: tuple[str, ...] = field(default=(), compare=False)

    def describe(self) -> dict:
        return {"own_uid": self.own_uid, "network_namespace": self.network_namespace,
                "read_only_mounts": self.read_only_mounts, "user_namespace": self.user_namespace,
                "pids_cgroup": self.pids_cgroup is not None, "hidden": [h for h, _ in self.hidden],
                "notes": list(self.notes)}


@dataclass(frozen=True)
class ChildPlan:
    """Everything the forked child applies to itself before `exec` (plain values: no locks, no logging)."""

    isolation: Isolation
    box: str
    uid: int | None
    cgroup: str | None
    rlimits: tuple[tuple[int, int, int], ...]   # (resource, soft, hard)
    network: bool                               # False: a new network namespace when available
    report_fd: int                              # where a failing step writes why, before raising


_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _check(result: int, step: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{step}: {os.strerror(err)}")
    return result


def traversal_blocker(path: str) -> str | None:
    """The first directory on the way to `path` that users other than its owner cannot enter, if any."""
    current = "/"
    for part in [p for p in os.path.realpath(path).split("/") if p]:
        current = os.path.join(current, part)
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return None
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return current
    return None


def hidden_trees(paths: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`(blocker, trees)`: blocked directories to cover with a tmpfs and the trees to show inside them."""
    covered: dict[str, list[str]] = {}
    for path in sorted({os.path.realpath(p) for p in paths}):
        blocker = traversal_blocker(path)
        if blocker is None:
            continue
        trees = covered.setdefault(blocker, [])
        if not any(path == t or path.startswith(t + "/") for t in trees):
            trees.append(path)
    return tuple((blocker, tuple(trees)) for blocker, trees in covered.items())


def interpreter_trees() -> list[str]:
    """The directories the interpreter needs: its installation, the virtualenv and the real binary's."""
    return [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))]


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _isolate_mounts(lib, box: str, hidden) -> None:
    """Make every mount read-only but the box, with blocked directories covered (child, before exec)."""
    _check(lib.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    clones = []
    for _, trees in hidden:
        for tree in trees:
            clones.append((tree, _check(lib.syscall(SYS_OPEN_TREE, AT_FDCWD, tree.encode(),
                                                    OPEN_TREE_CLONE | AT_RECURSIVE), f"open_tree {tree}")))
    for blocker, _ in hidden:
        _check(lib.mount(b"tmpfs", blocker.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
               f"cover {blocker}")
    for tree, fd in clones:
        os.makedirs(tree, exist_ok=True)
        _check(lib.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, tree.encode(), MOVE_MOUNT_F_EMPTY_PATH),
               f"show {tree}")
        os.close(fd)
    _check(lib.mount(box.encode(), box.encode(), None, MS_BIND, None), "bind the box")
    read_only, writable = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0), _MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)
    _check(lib.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(read_only),
                       ctypes.sizeof(read_only)), "make every mount read-only")
    _check(lib.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, box.encode(), 0, ctypes.byref(writable),
                       ctypes.sizeof(writable)), "make the box writable")
    os.chdir(box)  # the cwd was entered before the bind mount covered it


def child_setup(plan: ChildPlan):
    """The `preexec_fn` that applies `plan` in the forked child; a failing step reports itself and raises."""
    lib = libc()
    iso = plan.isolation
    flags = ((CLONE_NEWUSER if iso.user_namespace else 0) | (CLONE_NEWNS if iso.read_only_mounts else 0)
             | (CLONE_NEWNET if iso.network_namespace and not plan.network else 0))
    if iso.user_namespace and not flags & ~CLONE_NEWUSER:
        flags = 0
    outer_uid, outer_gid = os.getuid(), os.getgid()

    def setup() -> None:
        step = "start"
        try:
            if plan.cgroup:
                step = "join the pids cgroup"
                _write(os.path.join(plan.cgroup, "cgroup.procs"), str(os.getpid()))
            if flags:
                step = "unshare namespaces"
                _check(lib.unshare(flags), step)
            if flags & CLONE_NEWUSER:
                step = "map the user namespace"
                _write("/proc/self/setgroups", "deny")
                _write("/proc/self/uid_map", f"{outer_uid} {outer_uid} 1")
                _write("/proc/self/gid_map", f"{outer_gid} {outer_gid} 1")
            if iso.read_only_mounts:
                step = "isolate mounts"
                _isolate_mounts(lib, plan.box, iso.hidden if plan.uid is not None else ())
            step = "set rlimits"
            for which, soft, hard in plan.rlimits:
                resource.setrlimit(which, (soft, hard))
            if plan.uid is not None:
                step = "drop to the sandbox uid"
                os.setgroups([])
                os.setgid(plan.uid)
                os.setuid(plan.uid)
            step = "prctl"
            _check(lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
            _check(lib.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0), "parent death signal")
        except BaseException as exc:
            os.write(plan.report_fd, f"{step}: {exc}".encode()[:2000])
            raise

    return setup


# --- per-run cgroups (parent side) -------------------------------------------------------------

def cgroup_bases() -> list[str]:
    """This process's own cgroup in the v1 pids hierarchy, then in v2 (per-run cgroups nest under it)."""
    try:
        with open("/proc/self/cgroup") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    v1, v2 = [], []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            v1.append(os.path.join("/sys/fs/cgroup/pids", path.lstrip("/")))
        elif not controllers:
            v2 += [os.path.join(mount, path.lstrip("/")) for mount in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")]
    return [base for base in v1 + v2 if os.path.isdir(base)]


def cgroup_base_usable(base: str) -> bool:
    """Whether a child cgroup with a pids limit can be made under `base` (tried, then removed)."""
    probe = os.path.join(base, f"retrace-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
    except OSError:
        return False
    try:
        return os.path.isfile(os.path.join(probe, "pids.max")) and os.path.isfile(os.path.join(probe, "cgroup.procs"))
    finally:
        os.rmdir(probe)


def make_cgroup(base: str, name: str, max_pids: int) -> str:
    path = os.path.join(base, name)
    os.mkdir(path)
    _write(os.path.join(path, "pids.max"), str(max_pids))
    return path


def cgroup_pids(path: str) -> list[int]:
    try:
        with open(os.path.join(path, "cgroup.procs")) as handle:
            return [int(line) for line in handle if line.strip()]
    except OSError:
        return []


def kill_cgroup(path: str, attempts: int = 200) -> int:
    """SIGKILL every process left in the run's cgroup and remove it; how many were killed."""
    import time

    killed = 0
    for _ in range(attempts):
        pids = cgroup_pids(path)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        try:
            os.rmdir(path)
            return killed
        except OSError:
            time.sleep(0.005)
    return killed


def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` (the run's own uid) from a forked helper that takes that uid."""
    pid = os.fork()
    if pid == 0:  # only async-signal-safe work in the child
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
