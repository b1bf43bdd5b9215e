"""The first code a sandboxed interpreter runs: it isolates itself, drops root, then runs the script.

Started by `retrace.evaluation.sandbox` as `python -I -c "<this module, compiled>; main()" PLAN
SYS_PATH SCRIPT ARGS...`, so the harness spawns with a cheap vfork (no `preexec_fn`, no fork of a
harness holding a model) and only one interpreter starts per run. Stdlib only, few imports, and
handed over already compiled (marshal, in the -c text): it runs before anything of the run's own. PLAN is tab-separated `key=value` fields (see `encode_plan`);
a failing step writes why to the report fd and exits 111 before any untrusted code runs; success
closes the report fd, which is how the harness knows setup is done.
"""

import ctypes
import os
import resource
import sys

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
SIGKILL = 9  # Linux; importing `signal` would pull in `enum` and slow every start
SETUP_FAILED = 111


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def encode_plan(*, box, report_fd, uid=None, cgroup=None, flags=0, hidden=(), rlimits=()):
    """PLAN for `main`: `hidden` is ((covered dir, (trees shown inside, ...)), ...), `rlimits` (resource, soft, hard)."""
    fields = {"box": box, "report": str(report_fd), "uid": "" if uid is None else str(uid), "cgroup": cgroup or "",
              "flags": str(flags), "hidden": "\n".join("\x1f".join([blocker, *trees]) for blocker, trees in hidden),
              "rlimits": ",".join(f"{r}:{soft}:{hard}" for r, soft, hard in rlimits)}
    for key, value in fields.items():
        if "\t" in value or "\0" in value:
            raise ValueError(f"sandbox plan field {key} holds a tab or NUL: {value!r}")
    return "\t".join(f"{key}={value}" for key, value in fields.items())


def _decode_plan(text):
    plan = dict(field.split("=", 1) for field in text.split("\t"))
    hidden = [entry.split("\x1f") for entry in plan["hidden"].split("\n") if entry]
    return {"box": plan["box"], "report": int(plan["report"]), "uid": int(plan["uid"]) if plan["uid"] else None,
            "cgroup": plan["cgroup"] or None, "flags": int(plan["flags"]),
            "hidden": [(entry[0], entry[1:]) for entry in hidden],
            "rlimits": [tuple(int(v) for v in item.split(":")) for item in plan["rlimits"].split(",") if item]}


def _check(result, step):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{step}: {os.strerror(err)}")
    return result


def _write(path, text):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _isolate_mounts(libc, box, hidden):
    """Every mount read-only but the box; each blocked directory covered by a tmpfs showing only its trees."""
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    clones = [(tree, _check(libc.syscall(SYS_OPEN_TREE, AT_FDCWD, tree.encode(), OPEN_TREE_CLONE | AT_RECURSIVE),
                            f"open_tree {tree}")) for _, trees in hidden for tree in trees]
    for blocker, _ in hidden:
        _check(libc.mount(b"tmpfs", blocker.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
               f"cover {blocker}")
    for tree, fd in clones:
        os.makedirs(tree, exist_ok=True)
        _check(libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, tree.encode(), MOVE_MOUNT_F_EMPTY_PATH), f"show {tree}")
        os.close(fd)
    _check(libc.mount(box.encode(), box.encode(), None, MS_BIND, None), "bind the box")
    read_only, writable = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0), _MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)
    _check(libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(read_only),
                        ctypes.sizeof(read_only)), "make every mount read-only")
    _check(libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, box.encode(), 0, ctypes.byref(writable),
                        ctypes.sizeof(writable)), "make the box writable")
    os.chdir(box)  # the cwd was entered before the bind mount covered it


def apply(plan):
    """Isolate this process as `plan` says; raises OSError naming the step that failed."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    outer_uid, outer_gid = os.getuid(), os.getgid()
    if plan["cgroup"]:
        _write(os.path.join(plan["cgroup"], "cgroup.procs"), str(os.getpid()))
    if plan["flags"]:
        _check(libc.unshare(plan["flags"]), "unshare namespaces")
    if plan["flags"] & CLONE_NEWUSER:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{outer_uid} {outer_uid} 1")
        _write("/proc/self/gid_map", f"{outer_gid} {outer_gid} 1")
    if plan["flags"] & CLONE_NEWNS:
        _isolate_mounts(libc, plan["box"], plan["hidden"])
    for which, soft, hard in plan["rlimits"]:
        resource.setrlimit(which, (soft, hard))
    if plan["uid"] is not None:
        os.setgroups([])
        os.setgid(plan["uid"])
        os.setuid(plan["uid"])
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "parent death signal")


def _run_script(paths, argv):
    """Run the box-relative script `argv[0]` as __main__, with `paths` (os.pathsep-joined) first on sys.path."""
    sys.argv = argv
    sys.path[:0] = [os.path.abspath(p) for p in paths.split(os.pathsep) if p]
    path = os.path.abspath(argv[0])
    with open(path, "rb") as handle:
        code = compile(handle.read(), path, "exec")
    main_globals = sys.modules["__main__"].__dict__
    builtins = main_globals["__builtins__"]
    main_globals.clear()
    main_globals.update(__name__="__main__", __file__=path, __builtins__=builtins, __doc__=None, __package__=None,
                        __spec__=None, __loader__=None, __cached__=None)
    exec(code, main_globals)


def main():
    plan_text, paths, *argv = sys.argv[1:]
    plan = _decode_plan(plan_text)
    try:
        apply(plan)
    except BaseException as exc:  # report and stop: nothing untrusted has run yet
        os.write(plan["report"], f"{type(exc).__name__}: {exc}".encode()[:2000])
        os._exit(SETUP_FAILED)
    os.close(plan["report"])
    _run_script(paths, argv)
