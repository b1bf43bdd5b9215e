"""What the sandbox can take away from a child on this machine; the child applies it to itself.

Linux only. The features, each used where the OS allows it (`sandbox.sandbox_isolation` probes them
once per process; `sandbox_child` applies them before any untrusted code runs):

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

import os
import signal
import stat
import sys
import time
from dataclasses import dataclass, field

from retrace.evaluation.sandbox_child import CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUSER

UID_RANGE = (2_000_000_000, 2_100_000_000)  # far above any real account or subuid range


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

    def unshare_flags(self, network: bool) -> int:
        """Namespaces the child enters; `network` True keeps the host's network."""
        flags = ((CLONE_NEWNS if self.read_only_mounts else 0)
                 | (CLONE_NEWNET if self.network_namespace and not network else 0))
        return flags | CLONE_NEWUSER if flags and self.user_namespace else flags


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
            v1.append(os.path.normpath(os.path.join("/sys/fs/cgroup/pids", path.lstrip("/"))))
        elif not controllers:
            v2 += [os.path.normpath(os.path.join(mount, path.lstrip("/"))) for mount in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")]
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


def remove_stale_cgroups(base: str) -> None:
    """Remove empty per-run cgroups left by harness processes that are gone (e.g. killed mid-run)."""
    for name in os.listdir(base):
        parts = name.split("-")
        if name.startswith("retrace-sandbox-") and len(parts) == 4 and parts[2].isdigit():
            try:
                os.kill(int(parts[2]), 0)
            except ProcessLookupError:
                kill_cgroup(os.path.join(base, name), attempts=2)
            except PermissionError:
                pass


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
