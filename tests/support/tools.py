"""The Go tools ops/tools/fetch builds (Alertmanager, amtool, helm), found in the user's cache."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FETCH = ROOT / "ops" / "tools" / "fetch"
NOT_BUILT = 3  # ops/tools/fetch --path: the tool is not in the cache


def tool_binary(tool: str, binary: str | None = None) -> Path:
    """The path of ``binary`` (default: ``tool``) built by `ops/tools/fetch tool`.

    Skips the test only when the tool is not built (`make tools` builds it, and `make
    test` runs that first); any other failure of the script fails the test."""
    done = subprocess.run([str(FETCH), "--path", tool], capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode == NOT_BUILT:
        pytest.skip(f"{tool} is not built: run `make tools` (or ops/tools/fetch {tool})")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip()) / (binary or tool)
    assert path.is_file(), f"{path} is missing though ops/tools/fetch says {tool} is built"
    return path
