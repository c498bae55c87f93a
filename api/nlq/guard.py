"""The SQL guard: whether a (model-written) query may run, and the statement that does.

A query runs only as one read-only SELECT (CTEs and UNIONs of SELECTs allowed) over the
tables and columns of api/nlq/schema.py. It is parsed with sqlglot's ClickHouse dialect and
the statement that runs is rendered from the checked tree, never the text as given: every
table reference becomes a subquery holding the caller's tenant's rows only, a LIMIT of at
most ``max_rows`` is enforced (a missing LIMIT is added; a larger one is refused, so the
caller learns the answer would have been cut), and the statement ends in a SETTINGS clause
of our own (readonly=1, max_execution_time, max_memory_usage). A SETTINGS
clause in SQL text works alike on chDB and on a server through clickhouse-driver, so the
Warehouse protocol needs no settings argument for it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from api.nlq.schema import ALLOWED_TABLES, COLUMN_TENANT, NESTED_GROUPS
from core.errors import OllyStackError
from core.tenancy import TENANT_ATTRIBUTE
from sinks.warehouse import check_identifier

DIALECT = "clickhouse"
MAX_SQL_CHARS = 20_000
_SYSTEM_DATABASES = frozenset({"system", "information_schema"})
# Scalar functions that reach outside the tables (files, URLs, dictionaries, Join tables)
# or only spend time. Table functions are refused wherever they appear.
_DENIED_FUNCTIONS = frozenset({
    "file", "url", "remote", "remotesecure", "cluster", "clusterallreplicas", "s3", "s3cluster", "input",
    "executable", "hdfs", "mysql", "postgresql", "odbc", "jdbc", "sqlite", "mongodb", "redis", "azureblobstorage",
    "gcs", "dictionary", "joinget", "joingetornull", "getmacro", "catboostevaluate", "sleep", "sleepeachrow",
    "filesystemavailable", "filesystemcapacity", "filesystemunreserved", "currentuser", "getsetting",
    "getserverport", "hostname", "fqdn", "uptime", "version",
})
_DENIED_PREFIXES = ("dict",)
# Statement kinds that must not occur anywhere in the tree, not even nested.
_WRITES: tuple[type[exp.Expression], ...] = (
    exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Command, exp.Merge, exp.TruncateTable,
    exp.Set, exp.Use, exp.Describe, exp.Into, exp.Copy, exp.Pragma, exp.Transaction, exp.Commit, exp.Rollback,
    exp.Cache, exp.Uncache, exp.Analyze, exp.Grant, exp.LoadData,
)


class GuardError(OllyStackError):
    """The guard refused a query; ``rule`` names the rule it broke (HTTP 400)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.detail = message


@dataclass(frozen=True)
class Caps:
    """What one guarded query may return and spend."""

    max_rows: int = 1000
    max_execution_s: float = 10.0
    max_memory_bytes: int = 1024 * 1024 * 1024


@dataclass(frozen=True)
class GuardedQuery:
    """The statement to run with its parameters, the output column names as written, and
    whether the guard added the LIMIT."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    limit_added: bool = False


def guard_sql(sql: str, *, database: str, tenant: str | None, caps: Caps = Caps()) -> GuardedQuery:
    """Check ``sql`` and return the statement that may run for ``tenant`` (None: every
    tenant's rows, for auth off or an admin key) over ``database``.

    Raises GuardError naming the rule the query broke."""
    check_identifier(database, "database")
    try:
        return _guard(_parse(sql), database, tenant, caps)
    except RecursionError:
        raise GuardError("parse", "the query nests too deeply") from None


def _guard(root: exp.Select | exp.SetOperation, database: str, tenant: str | None, caps: Caps) -> GuardedQuery:
    ctes = _cte_names(root)
    tables = _check_tree(root, database, ctes)
    _check_columns(root, tables, ctes)
    if tenant is not None:
        _check_no_tenant(root)
    columns = tuple(root.named_selects)
    limited, added = _enforce_limit(root, caps.max_rows)
    _scope_tables(limited, database, tenant, ctes)
    # No max_result_rows: ClickHouse documents it as checked on subqueries too, which would
    # refuse the tenant subqueries of any real table; the LIMIT above bounds the answer.
    settings = (f"readonly = 1, max_execution_time = {caps.max_execution_s:g}, "
                f"max_memory_usage = {int(caps.max_memory_bytes)}")
    rendered = limited.sql(dialect=DIALECT, comments=False) + " SETTINGS " + settings
    return GuardedQuery(rendered, {"tenant": tenant} if tenant is not None else {}, columns, added)


def _parse(sql: str) -> exp.Select | exp.SetOperation:
    if not sql.strip():
        raise GuardError("parse", "the query is empty")
    if len(sql) > MAX_SQL_CHARS:
        raise GuardError("parse", f"the query is longer than {MAX_SQL_CHARS} characters")
    try:
        tokens = sqlglot.tokenize(sql, read=DIALECT)
    except (SqlglotError, ValueError, RecursionError) as exc:
        raise GuardError("parse", f"the query does not tokenize: {str(exc)[:200]}") from None
    # A comment can hide text a reader (or another parser) takes for a statement.
    if any(token.comments for token in tokens):
        raise GuardError("comment", "comments are not allowed in a query")
    first = tokens[0].text.upper() if tokens else ""
    if first not in ("SELECT", "WITH", "("):
        raise GuardError("select_only", f"only SELECT queries may run, not {first[:20]}")
    if any(token.text.upper() == "OUTFILE" for token in tokens):
        raise GuardError("into_outfile", "INTO OUTFILE is not allowed")
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except (SqlglotError, ValueError, RecursionError) as exc:
        # RecursionError: nesting deeper than the parser's stack (a refusal, not a crash).
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GuardError("parse", f"not valid ClickHouse SQL: {first[:200]}") from None
    if len(statements) != 1:
        raise GuardError("one_statement", f"exactly one statement is allowed, got {len(statements)}")
    root = statements[0]
    if not isinstance(root, exp.Select | exp.SetOperation):
        raise GuardError("select_only", f"only SELECT queries may run, not {root.key.upper()}")
    return root


def _cte_names(root: exp.Expression) -> set[str]:
    names = {cte.alias_or_name for cte in root.find_all(exp.CTE)}
    shadowing = sorted(n for n in names if n in ALLOWED_TABLES)
    if shadowing:
        raise GuardError("cte_name", f"a CTE may not be named like a table: {', '.join(shadowing)}")
    # An alias named like a table could be read as that table where ClickHouse resolves names.
    aliases = sorted({a.alias for a in root.find_all(exp.Alias) if a.alias in ALLOWED_TABLES})
    if aliases:
        raise GuardError("cte_name", f"an alias may not be named like a table: {', '.join(aliases)}")
    return names


def _check_tree(root: exp.Expression, database: str, ctes: set[str]) -> set[str]:
    """Every node of the tree is allowed; returns the allowlisted tables read."""
    tables: set[str] = set()
    for node in root.walk():
        if isinstance(node, _WRITES):
            rule = "into" if isinstance(node, exp.Into) else "select_only"
            raise GuardError(rule, f"{node.key.upper()} is not allowed; only read-only SELECT queries run")
        if isinstance(node, exp.Select | exp.SetOperation):
            if node.args.get("settings"):
                raise GuardError("settings", "SETTINGS clauses are not allowed; the guard sets the query's limits")
            if node.args.get("format"):
                raise GuardError("format", "FORMAT clauses are not allowed; the API answers JSON")
        if isinstance(node, exp.Placeholder | exp.Parameter):
            raise GuardError("parameter", "query parameters are not allowed; write values as literals")
        if isinstance(node, exp.In) and node.args.get("field") is not None:
            named = node.args["field"].sql(dialect=DIALECT)
            if named.split(".", 1)[0].lower() in _SYSTEM_DATABASES:
                raise GuardError("system_table", f"system tables are not allowed: {named[:60]}")
            # `x IN name` reads a whole table named `name`, past the tenant filter.
            raise GuardError("in_table", "IN <table> is not allowed; write IN (SELECT ...)")
        if isinstance(node, exp.Table):
            tables.update(_check_table(node, database, ctes))
        elif isinstance(node, exp.Func):
            _check_function(node)
    return tables


def _check_table(node: exp.Table, database: str, ctes: set[str]) -> set[str]:
    if not isinstance(node.this, exp.Identifier):
        name = node.this.sql(dialect=DIALECT)[:60] if node.this is not None else "?"
        raise GuardError("table_function", f"table functions are not allowed: {name}")
    db, catalog = node.db, node.catalog
    if db.lower() in _SYSTEM_DATABASES or catalog.lower() in _SYSTEM_DATABASES:
        raise GuardError("system_table", f"system tables are not allowed: {db}.{node.name}")
    if catalog or (db and db != database):
        raise GuardError("database", f"only tables of the database {database!r} may be read, not {db}.{node.name}")
    if not db and node.name in ctes:
        return set()
    if node.name not in ALLOWED_TABLES:
        raise GuardError("table", f"table {node.name!r} is not one of: {', '.join(ALLOWED_TABLES)}")
    return {node.name}


def _check_function(node: exp.Func) -> None:
    name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
    if name in _DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
        raise GuardError("function", f"function {name}() is not allowed")


def _defined_names(root: exp.Expression) -> set[str]:
    """Names the query itself defines: select aliases, table and CTE aliases (with their
    column lists), lambda parameters and ARRAY JOIN aliases."""
    names: set[str] = set()
    for node in root.walk():
        if isinstance(node, exp.Alias | exp.CTE | exp.Subquery | exp.Table):
            if node.alias:
                names.add(node.alias)
            alias = node.args.get("alias")
            if isinstance(alias, exp.TableAlias):
                names.update(c.name for c in alias.columns)
        elif isinstance(node, exp.Lambda):
            names.update(e.name for e in node.expressions)
    return names


def _check_columns(root: exp.Expression, tables: set[str], ctes: set[str]) -> None:
    allowed = {c for t in tables for c in ALLOWED_TABLES[t].columns}
    defined = _defined_names(root)
    qualifiers = defined | tables | ctes
    for column in root.find_all(exp.Column):
        parts = [p.name for p in column.parts]
        if parts and parts[0].lower() in _SYSTEM_DATABASES:
            raise GuardError("system_table", f"system tables are not allowed: {'.'.join(parts)}")
        name = parts[-1]
        prefix = parts[:-1]
        if prefix and prefix[-1] in NESTED_GROUPS:  # Events.Name, t.Events.Name
            name, prefix = f"{prefix[-1]}.{name}", prefix[:-1]
        if len(prefix) > 1 or (prefix and prefix[0] not in qualifiers):
            raise GuardError("column", f"{'.'.join(parts)!r} does not name a column of a table the query reads")
        if name not in allowed and name not in defined:
            read = ", ".join(sorted(tables)) or "any table read"
            raise GuardError("column", f"column {name!r} is not a readable column of {read}")


def _check_no_tenant(root: exp.Expression) -> None:
    """A tenant-scoped query may not name tenants: the guard applies the caller's, and a
    query naming another one asks for rows it will not get."""
    for node in root.walk():
        named = (isinstance(node, exp.Column) and node.name == COLUMN_TENANT) or (
            isinstance(node, exp.Literal) and node.is_string and node.this == TENANT_ATTRIBUTE)
        if named:
            raise GuardError("tenant", "queries may not name tenants; the guard restricts every table to yours")


def _enforce_limit(root: exp.Select | exp.SetOperation, max_rows: int) -> tuple[exp.Expression, bool]:
    limit = root.args.get("limit") if isinstance(root, exp.Select) else None
    if isinstance(root, exp.Select) and limit is None:
        root.set("limit", exp.Limit(expression=exp.Literal.number(max_rows)))
        return root, True
    if isinstance(root, exp.Select) and isinstance(limit, exp.Limit) and not limit.expressions:
        value = limit.expression
        if not (isinstance(value, exp.Literal) and value.is_int):
            raise GuardError("limit", "LIMIT must be a whole number")
        if int(value.this) > max_rows:
            raise GuardError("limit", f"LIMIT {value.this} is above the cap of {max_rows} rows")
        return root, False
    # A UNION (whose last SELECT alone a trailing LIMIT binds) or LIMIT ... BY: cap the whole.
    wrapped = exp.select("*").from_(exp.Subquery(this=root)).limit(max_rows)
    return wrapped, True


def _scope_tables(root: exp.Expression, database: str, tenant: str | None, ctes: set[str]) -> None:
    """Replace every reference to an allowlisted table by its rows of ``tenant``."""
    for table in list(root.find_all(exp.Table)):
        if not table.db and table.name in ctes:
            continue
        name = table.name
        final = isinstance(table.parent, exp.Final)
        source = exp.Table(this=exp.to_identifier(name), db=exp.to_identifier(database))
        inner = exp.select("*").from_(exp.Final(this=source) if final else source)
        if tenant is not None:
            condition = sqlglot.parse_one(f"{ALLOWED_TABLES[name].tenant} = {{tenant:String}}", read=DIALECT)
            inner = inner.where(condition)
        alias = table.alias or name
        replacement = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        target = table.parent if final and table.parent is not None else table
        target.replace(replacement)
