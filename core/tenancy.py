"""The tenant of a record: resource attribute tenant.id, stamped by the gateway when auth is on."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TENANT_ATTRIBUTE = "tenant.id"


def tenant_of(resource_attributes: Mapping[str, Any] | None) -> str:
    """The tenant of a resource ('' without one)."""
    value = (resource_attributes or {}).get(TENANT_ATTRIBUTE, "")
    return value if isinstance(value, str) else str(value)
