"""ops/tools/fetch without a build: the cache is looked up per user, a missing Go toolchain is
an error naming the way out, and unknown tools are refused."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.tools import FETCH, NOT_BUILT


def fetch(*args: str, cache: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([str(FETCH), *args], capture_output=True, text=True, env=env, check=False)  # noqa: S603


def test_a_tool_not_built_has_no_path(tmp_path: Path) -> None:
    assert fetch("--path", "helm", cache=tmp_path).returncode == NOT_BUILT


def test_without_go_the_error_names_the_way_out(tmp_path: Path) -> None:
    # A PATH with the shell tools the script needs and no go.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("bash", "mkdir", "flock", "sed", "rm", "cp", "chmod", "cat"):
        found = shutil.which(name)
        assert found, name
        (tools / name).symlink_to(found)
    done = fetch("helm", cache=tmp_path / "cache", path=str(tools))
    assert done.returncode == 1
    assert "needs the Go toolchain" in done.stderr and "https://go.dev/doc/install" in done.stderr
    assert str(tmp_path / "cache" / "ollystack" / "helm-") in done.stderr  # where prebuilt binaries would go


def test_an_unknown_tool_is_refused(tmp_path: Path) -> None:
    done = fetch("kubectl", cache=tmp_path)
    assert done.returncode == 2 and "unknown tool 'kubectl' (known: alertmanager, helm)" in done.stderr
