"""What the deployment files (compose.yaml, the Helm chart) are checked against: the settings."""
from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel

from core.settings import ENV_PREFIX, Settings

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def setting_env_names() -> set[str]:
    """Every OLLYSTACK_* variable the settings model reads (core/settings.py _from_env)."""
    names = set()
    for name, field in Settings.model_fields.items():
        if isinstance(field.default, BaseModel):
            names |= {f"{ENV_PREFIX}{name}_{sub}".upper() for sub in type(field.default).model_fields}
        else:
            names.add(f"{ENV_PREFIX}{name}".upper())
    return names


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with compose's ${VAR}, ${VAR:-default} and ${VAR:?message} filled from ``environ``;
    a required variable that is missing raises KeyError naming it."""
    def fill(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if environ.get(name):
            return environ[name]
        if kind.endswith("?"):
            raise KeyError(f"{name} is required: {rest}")
        return rest if kind.endswith("-") else ""
    return _INTERPOLATION.sub(fill, text)


def interpolated_names(text: str) -> set[str]:
    return {m.group(1) for m in _INTERPOLATION.finditer(text)}
