"""The OllyStack exception tree: every error says whether retrying can help."""
from __future__ import annotations


class OllyStackError(Exception):
    """Root of every error OllyStack raises on purpose.

    ``retriable`` tells a caller whether the same call can succeed later
    (broker or warehouse down) or never will (bad input, bad config).
    """

    retriable: bool = False


class ConfigError(OllyStackError):
    """A setting has a value that is not allowed; the message names the setting."""


class BrokerUnavailableError(OllyStackError):
    """Kafka cannot be reached, or the local broker cannot be started."""

    retriable = True


class LocalBrokerError(OllyStackError):
    """The local Kafka broker cannot run on this machine (no Java, no Maven, bad setup)."""


class WarehouseError(OllyStackError):
    """A ClickHouse statement failed for a reason that retrying will not fix."""


class WarehouseUnavailableError(WarehouseError):
    """ClickHouse cannot be reached right now; retry with backoff."""

    retriable = True


class MigrationError(WarehouseError):
    """A schema migration failed; the message names the migration."""


class DecodeError(OllyStackError):
    """Input bytes are not a valid OTLP message (permanent: dead letter or 4xx)."""


class NotBuiltError(OllyStackError):
    """A CLI command exists in the design but is not built yet."""
