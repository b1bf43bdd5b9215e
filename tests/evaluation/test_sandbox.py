"""The sandbox against hostile code: each attack fails cleanly, the harness survives, nothing leaks out.

Real subprocesses throughout. Where this machine lacks a feature (not root, no namespaces), the test
that needs it is skipped with the reason `sandbox_isolation()` recorded.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from retrace.evaluation.sandbox import SandboxError, SandboxLimits, run_many, run_python, sandbox_isolation

QUICK = SandboxLimits(timeout_s=3.0, cpu_s=3)


def needs(feature: str) -> None:
    isolation = sandbox_isolation()
    if not getattr(isolation, feature):
        pytest.skip(f"this machine does not allow {feature}: {isolation.notes}")


def processes_of(uid: int) -> list[int]:
    """Live (not zombie) processes running as `uid` (the run's own uid, which it printed first)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as handle:
                status = dict(line.split(":", 1) for line in handle if ":" in line)
            uid_of_process = int(status["Uid"].split()[0])
            if status["State"].split()[0] in ("Z", "X"):
                continue
        except (OSError, KeyError):
            continue
        if uid_of_process == uid:
            found.append(int(pid))
    return found


def test_runs_code_with_files_argv_stdin_and_sys_path():
    result = run_python(argv=["main.py", "x", "y"], sys_path=("lib",), stdin="from stdin",
                        files={"main.py": "import sys, helper\nprint(sys.argv[1:], helper.VALUE, sys.stdin.read())",
                               "lib/helper.py": "VALUE = 42\n"})
    assert result.passed and result.reason == "ok"
    assert result.stdout == "['x', 'y'] 42 from stdin\n"


def test_exit_codes_signals_and_the_environment_are_reported():
    assert run_python("raise SystemExit(3)").reason == "exit 3"
    killed = run_python("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert killed.reason == "killed by signal SIGSEGV" and not killed.passed
    env = run_python("import os; print(sorted(os.environ))").stdout
    assert "PYTHONPATH" not in env and "HF_HOME" not in env and "HOME" in env


def test_the_box_is_a_fresh_directory_removed_afterwards():
    result = run_python("import os; open('made.txt', 'w').write('x'); print(os.getcwd()); print(os.listdir('.'))")
    box, listing = result.stdout.splitlines()
    assert listing == "['__sandbox_main__.py', 'made.txt']"
    assert not os.path.exists(box)


def test_bad_requests_are_refused():
    with pytest.raises(SandboxError, match="relative path"):
        run_python("pass", files={"../escape.py": "x"})
    with pytest.raises(SandboxError, match="needs `code`"):
        run_python()


def test_infinite_loop_is_killed_at_the_wall_clock_limit():
    start = time.monotonic()
    result = run_python("while True:\n    pass", limits=SandboxLimits(timeout_s=1.0, cpu_s=5))
    assert result.timed_out and result.reason == "timeout" and not result.passed
    assert 1.0 <= time.monotonic() - start < 3.0


def test_cpu_limit_stops_a_busy_loop():
    result = run_python("while True:\n    pass", limits=SandboxLimits(timeout_s=20.0, cpu_s=1))
    assert result.reason in ("killed by signal SIGXCPU", "killed by signal SIGKILL") and not result.timed_out


def test_memory_hog_gets_a_memory_error():
    result = run_python("block = bytearray(8 << 30)", limits=QUICK)
    assert result.reason == "exit 1" and "MemoryError" in result.stderr


def test_fork_bomb_is_contained_and_every_process_is_gone_afterwards():
    bomb = "import os\nprint(os.getuid(), flush=True)\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run_python(bomb, limits=SandboxLimits(timeout_s=2.0, cpu_s=2, max_processes=16))
    assert not result.passed
    assert run_python("print('alive')").stdout == "alive\n"  # the harness still spawns
    if sandbox_isolation().own_uid:
        assert processes_of(int(result.stdout.split()[0])) == []


def test_process_limit_is_enforced():
    if not (sandbox_isolation().pids_cgroup or sandbox_isolation().own_uid):
        pytest.skip("no pids cgroup and no own uid here: the process limit is not enforced for root")
    spawn = ("import subprocess, sys\nchildren = []\ntry:\n    for _ in range(40):\n"
             "        children.append(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']))\n"
             "except OSError as exc:\n    print('refused after', len(children), type(exc).__name__)\n")
    result = run_python(spawn, limits=SandboxLimits(timeout_s=10, max_processes=8))
    assert result.stdout.startswith("refused after ") and int(result.stdout.split()[2]) < 8


def test_escaped_daemon_is_killed_with_the_run():
    needs("own_uid")
    escape = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
              "print('left a daemon as', os.getuid())\n")
    result = run_python(escape, limits=QUICK)
    assert result.stdout.startswith("left a daemon as") and result.wall_s < 2.5
    assert processes_of(int(result.stdout.split()[-1])) == []


def test_writes_outside_the_box_fail_and_leave_nothing(tmp_path):
    needs("read_only_mounts")
    targets = [tmp_path / "from_sandbox.txt", f"/tmp/retrace-sandbox-escape-{os.getpid()}",
               os.path.expanduser("~/retrace-sandbox-escape"), f"/dev/shm/retrace-sandbox-escape-{os.getpid()}"]
    os.chmod(tmp_path, 0o777)  # even a world-writable directory
    code = "import sys\nfor path in sys.argv[1:]:\n    try:\n        open(path, 'w').write('x')\n" \
           "        print('wrote', path)\n    except OSError as exc:\n        print('refused', exc.errno)\n"
    result = run_python(code, argv=[str(t) for t in targets], limits=QUICK)
    assert "wrote" not in result.stdout and result.stdout.count("refused") == len(targets)
    assert not any(os.path.exists(t) for t in targets)
    assert list(tmp_path.iterdir()) == []


def test_no_network_not_even_to_the_hosts_loopback():
    needs("network_namespace")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                "    print('connected')\nexcept OSError as exc:\n    print('refused', exc.errno)\n")
        result = run_python(code, limits=QUICK)
        assert result.stdout.startswith("refused")
        shared = run_python(code, limits=SandboxLimits(timeout_s=3, network=True))
        assert shared.stdout == "connected\n"  # the test server works: the namespace is what blocked it


def test_the_harness_survives_attempts_to_kill_it():
    needs("own_uid")
    attacks = {"kill parent": "import os, signal; os.kill(os.getppid(), signal.SIGKILL)",
               "killpg parent": "import os, signal; os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)",
               "kill pytest": f"import os, signal; os.kill({os.getpid()}, signal.SIGTERM)",
               "kill everything": "import os, signal; os.kill(-1, signal.SIGKILL)"}
    results = run_many([{"code": code, "limits": QUICK} for code in attacks.values()], max_workers=2)
    for name, result in zip(attacks, results):
        if name == "kill everything":  # allowed, but it only reaches the run's own uid
            continue
        assert result.reason == "exit 1" and "PermissionError" in result.stderr, name
    assert os.getppid() > 1  # still here, still parented


def test_run_many_keeps_job_order():
    results = run_many([{"code": f"print({i})"} for i in range(6)], max_workers=3)
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]


def test_output_is_capped_but_the_run_goes_on():
    result = run_python("import sys\nsys.stdout.write('x' * 300000)\nprint('done', file=sys.stderr)",
                        limits=SandboxLimits(output_bytes=1000))
    assert result.passed and result.output_truncated and len(result.stdout) == 1000 and result.stderr == "done\n"
