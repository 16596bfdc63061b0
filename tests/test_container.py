"""The Dockerfile's install and entrypoint, run directly (no Docker engine here).

Builds the wheels the build stage builds, installs them offline into a fresh
virtualenv as the runtime stage does, starts the entrypoint with the image's
environment and runs the HEALTHCHECK command against it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _marked_run(label: str) -> str:
    match = re.search(rf"# test: {label}\nRUN (.+)", DOCKERFILE)
    assert match, f"Dockerfile lost its '# test: {label}' RUN line"
    return match.group(1)


def _exec_form(pattern: str) -> list[str]:
    match = re.search(pattern + r"(\[.+\])\s*$", DOCKERFILE, re.M)
    assert match, f"no exec-form instruction matching {pattern!r}"
    return list(json.loads(match.group(1)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_dockerfile_install_and_entrypoint(tmp_path: Path) -> None:
    wheels, env_dir, data = tmp_path / "wheels", tmp_path / "venv", tmp_path / "data"
    data.mkdir()
    build = _marked_run("build wheels").replace("/wheels", str(wheels)).replace(" .", f" {ROOT}")
    subprocess.run(shlex.split(build.replace("pip ", f"{sys.executable} -m pip ", 1)),
                   cwd=ROOT, check=True, capture_output=True)
    venv.create(env_dir, with_pip=True)
    install = _marked_run("install").split("&&")[0].replace("/wheels", str(wheels))
    py = env_dir / "bin" / "python"
    subprocess.run(shlex.split(install.replace("pip ", f"{py} -m pip ", 1)), check=True,
                   capture_output=True)

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIGWATCH_")}
    env.update({
        "PATH": f"{env_dir / 'bin'}:{env['PATH']}",
        "FIGWATCH_DATABASE_URL": f"sqlite:///{data / 'figwatch.db'}",
        "FIGWATCH_LISTEN": f"127.0.0.1:{port}",
        "FIGWATCH_CONFIG": str(data / "figwatch.toml"),
    })
    (data / "figwatch.toml").write_text("")  # the volume's config: no sources yet
    entry = _exec_form(r"^ENTRYPOINT ")
    log = (tmp_path / "entrypoint.log").open("wb")
    proc = subprocess.Popen(entry, cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        health = _exec_form(r"HEALTHCHECK[^\n]*\\\n\s*CMD ")
        assert health[0] == "python"
        cmd = [c.replace("8787", str(port)) for c in health]
        deadline = time.monotonic() + 30
        while True:
            result = subprocess.run([str(py), *cmd[1:]], env=env, capture_output=True)
            if result.returncode == 0:
                break
            assert proc.poll() is None, (tmp_path / "entrypoint.log").read_text()
            assert time.monotonic() < deadline, result.stderr.decode()
            time.sleep(0.2)
        assert (data / "figwatch.db").exists()
    finally:
        proc.terminate()
        code = proc.wait(timeout=20)
        log.close()
    assert code == 0, (tmp_path / "entrypoint.log").read_text()
