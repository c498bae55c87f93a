"""The OllyStack exception tree: every error says whether retrying can help."""
from __future__ import annotations


class OllyStackError(Exception):
    """Root of every error OllyStack raises on purpose.

    ``retriable`` tells a caller whether the same call can succeed later (broker or
    warehouse down, busy) or never will (bad input, bad config)."""

    retriable: bool = False


class ConfigError(OllyStackError):
    """A setting or argument has a value that is not allowed; the message names it."""


class BrokerUnavailableError(OllyStackError):
    """Kafka cannot be reached, did not acknowledge in time, or the local broker cannot start."""

    retriable = True


class LocalBrokerError(OllyStackError):
    """The local Kafka broker cannot run on this machine (no Java, no Maven, bad setup)."""


class DataError(OllyStackError):
    """A record's content cannot be processed as it is (permanent: dead letter or 4xx)."""


class DecodeError(DataError):
    """Input bytes are not a valid OTLP message, enriched record or alert."""


class WarehouseError(OllyStackError):
    """A ClickHouse call failed. Permanent unless a subclass says otherwise: the statement
    or the data is wrong, and the same call will fail again."""


class RowsRefusedError(WarehouseError):
    """The rows cannot be stored as they are (a value out of a column's range, a wrong
    type, an unknown column): the batch holds a record that must be set aside."""


class WarehouseUnavailableError(WarehouseError):
    """ClickHouse cannot be reached, or refused for now (too many parts, memory, a
    timeout): retry with backoff."""

    retriable = True


class MigrationError(WarehouseError):
    """A schema migration failed; the message names the migration and statement."""


class ListenError(OllyStackError):
    """A port cannot be bound (in use, or not allowed); the message names the setting."""
