"""The Python environment the Spark executors (and the EMR driver) run in, packed as one archive.

    python -m pipeline.environment [--out dist/pyspark_env.tar.gz] [--python-prefix /usr]

Shipped with `spark.archives=<uri>#environment` and `spark.pyspark.python=./environment/bin/python`,
so a cluster needs no pip and no internet: the archive holds every package the jobs import
(setup.py's install_requires pinned by constraints.txt, without pyspark: the cluster's Spark puts
its own on the workers' path). The project's code is not in it: it ships as the small
`--py-files` zip, so a code change does not rebuild or re-upload this archive.

Built with `pip install --target` for CPython 3.11 manylinux x86_64 wheels only, whatever the
building machine is, then laid out as a virtual environment whose `bin/python` links to
`<python-prefix>/bin/python3.11` (default /usr: Amazon Linux 2023 on EMR 7, Debian 12 in the
Docker image and here). Why not venv-pack: docs/architecture.md, "The environment archive".
Built archives are cached under .cache/environment/ by the hash of what goes in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.config import PROJECT_ROOT
from core.errors import ConfigError, ExitCode, tool_main

NOT_ON_EMR = {"pyspark"}  # EMR brings its own Spark; installing pyspark from PyPI would shadow it
ARCHIVE = "pyspark_env.tar.gz"
ALIAS = "environment"  # the folder Spark unpacks the archive into (`<uri>#environment`)
EXECUTOR_PYTHON = f"./{ALIAS}/bin/python"
PYTHON_VERSION = "3.11"
DEFAULT_PYTHON_PREFIX = "/usr"
# newest first; 2_34 is Amazon Linux 2023's glibc, so no wheel needs more than EMR 7 has
PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
CACHE = PROJECT_ROOT / ".cache" / "environment"
# a script's first lines that run it with the python next to it, wherever the folder is unpacked
RELOCATABLE_SHEBANG = "#!/bin/sh\n'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")/python\" \"$0\" \"$@\"\n' '''\n"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(root: Path = PROJECT_ROOT) -> list[str]:
    """setup.py's install_requires as exact pins from constraints.txt, without what EMR provides."""
    setup_text = (root / "setup.py").read_text(encoding="utf-8")
    block = setup_text.split("install_requires=[", 1)[1].split("]", 1)[0]
    names = [re.split(r"[<>=!~ ]", line.strip().strip('",'), maxsplit=1)[0]
             for line in block.splitlines() if line.strip().startswith('"')]
    pins = {}
    for line in (root / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, pinned = line.split("==", 1)
            pins[_normal(name)] = pinned.strip()
    missing = [n for n in names if _normal(n) not in pins and _normal(n) not in NOT_ON_EMR]
    if missing:
        raise ConfigError(f"constraints.txt pins none of {', '.join(missing)}: run `make lock`")
    return [f"{n}=={pins[_normal(n)]}" for n in names if _normal(n) not in NOT_ON_EMR]


@dataclass(frozen=True)
class EnvironmentArchive:
    path: Path
    key: str
    requirements: tuple[str, ...]
    python_prefix: str
    bytes: int
    build_seconds: float  # 0.0 when it came from the cache


def cache_key(requirements: Sequence[str], python_prefix: str) -> str:
    text = json.dumps({"requirements": sorted(requirements), "prefix": python_prefix, "platforms": PLATFORMS,
                       "python": PYTHON_VERSION,
                       # this file builds it: a change here must not be hidden by an older cached archive
                       "builder": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def environment_archive(out: Path, requirements: Sequence[str], python_prefix: str = DEFAULT_PYTHON_PREFIX,
                        cache: Path | None = CACHE) -> EnvironmentArchive:
    """`out` holds the archive for these requirements: copied from the cache, else built (and cached)."""
    if not python_prefix.startswith("/"):
        raise ConfigError(f"--python-prefix must be an absolute path (got {python_prefix!r})")
    key = cache_key(requirements, python_prefix)
    cached = cache / f"{key}.tar.gz" if cache else None
    out.parent.mkdir(parents=True, exist_ok=True)
    build_seconds = 0.0
    if cached is None or not cached.exists():
        started = time.monotonic()
        target = cached or out
        target.parent.mkdir(parents=True, exist_ok=True)
        _build(target, requirements, python_prefix)
        build_seconds = time.monotonic() - started
    if cached is not None:
        for older in cached.parent.glob("*.tar.gz"):  # archives of earlier requirements or builders
            if older != cached:
                older.unlink(missing_ok=True)
        shutil.copyfile(cached, out)
    return EnvironmentArchive(out, key, tuple(requirements), python_prefix, out.stat().st_size, build_seconds)


def _build(archive: Path, requirements: Sequence[str], python_prefix: str) -> None:
    with tempfile.TemporaryDirectory(prefix="igdb-env-") as work:
        root = Path(work) / ALIAS
        site = root / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
        _pip_install(site, requirements)
        _lay_out_venv(root, site, python_prefix)
        partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")  # builders side by side
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            for path in sorted(root.rglob("*")):
                tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False, filter=_portable)
        os.replace(partial, archive)  # a killed build never leaves a half archive under the final name


def _pip_install(site: Path, requirements: Sequence[str]) -> None:
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--target", str(site), "--only-binary=:all:", "--implementation", "cp",
               "--python-version", PYTHON_VERSION, "--abi", f"cp{PYTHON_VERSION.replace('.', '')}", *platforms,
               "--no-compile", *requirements]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError("pip could not build the environment archive (a package without a "
                          f"manylinux x86_64 wheel for CPython {PYTHON_VERSION}?):\n{result.stderr[-2000:]}")


def _lay_out_venv(root: Path, site: Path, python_prefix: str) -> None:
    """Make `root` a virtual environment of `python_prefix`'s interpreter, valid wherever it is unpacked."""
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    # pip --target puts console scripts in site-packages/bin with the building python's path
    scripts = site / "bin"
    if scripts.is_dir():
        for script in scripts.iterdir():
            text = script.read_text(encoding="utf-8", errors="replace")
            if text.startswith("#!"):
                body = text.split("\n", 1)[1] if "\n" in text else ""
                (bin_dir / script.name).write_text(RELOCATABLE_SHEBANG + body, encoding="utf-8")
                (bin_dir / script.name).chmod(0o755)
        shutil.rmtree(scripts)
    interpreter = f"{python_prefix.rstrip('/')}/bin/python{PYTHON_VERSION}"
    for name in ("python", "python3", f"python{PYTHON_VERSION}"):
        (bin_dir / name).symlink_to(interpreter)
    (root / "pyvenv.cfg").write_text(f"home = {python_prefix.rstrip('/')}/bin\ninclude-system-site-packages = false\n"
                                     f"version = {PYTHON_VERSION}\n", encoding="utf-8")


def _portable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Same bytes for the same inputs: no owner, no build time."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


@tool_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.environment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=f"dist/{ARCHIVE}", help=f"the archive to write (default dist/{ARCHIVE})")
    parser.add_argument("--python-prefix", default=DEFAULT_PYTHON_PREFIX,
                        help="where Python 3.11 lives on the nodes: bin/python3.11 under it (default /usr)")
    parser.add_argument("--no-cache", action="store_true", help="build even if .cache/environment has it")
    args = parser.parse_args(argv)
    built = environment_archive(Path(args.out), runtime_requirements(), args.python_prefix,
                                cache=None if args.no_cache else CACHE)
    how = f"built in {built.build_seconds:.0f} s" if built.build_seconds else "from the cache"
    print(f"{built.path}: {built.bytes / 1e6:.0f} MB, {len(built.requirements)} requirements, "
          f"python {built.python_prefix}/bin/python{PYTHON_VERSION}, {how}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
