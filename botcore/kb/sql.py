"""Business data from SQL: each row of a query rendered by a template becomes a section.

Any database SQLAlchemy can reach (``sqlite:///shop.db``, ``postgresql+psycopg://...``,
``mysql+pymysql://...``; the driver must be installed). The query runs read-only in intent:
botcore never commits. Passwords in URLs never appear in source names or error messages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from botcore.kb.errors import IngestError

__all__ = ["fetch_rows", "render_rows", "safe_url", "sql_source_name"]


def safe_url(url: str) -> str:
    """The URL with its password masked (``***``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(invalid database URL)"


def sql_source_name(url: str, query: str) -> str:
    """A stable source name for a query: ``sql:<database>#<hash of url and query>``."""
    digest = hashlib.sha256(f"{url}\n{query}".encode()).hexdigest()[:12]
    masked = safe_url(url)
    database = masked.rsplit("/", 1)[-1] or masked
    return f"sql:{database}#{digest}"


def fetch_rows(url: str, query: str) -> list[dict[str, Any]]:
    """Run ``query`` and return its rows as dicts.

    Raises:
        IngestError: bad URL, missing driver, connection failure or bad SQL (reason given).
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    source = safe_url(url)
    try:
        engine = create_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise IngestError(source, f"bad database URL or driver ({type(exc).__name__})") from None
    try:
        with engine.connect() as connection:
            result = connection.execute(text(query))
            return [dict(row) for row in result.mappings()]
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        raise IngestError(source, f"SQL failed: {detail}") from None
    finally:
        engine.dispose()


def render_rows(rows: Sequence[Mapping[str, Any]], template: str) -> list[str]:
    """Each row through ``template.format_map``; empty renders are dropped.

    Raises:
        IngestError: no rows, or a template field that is not a column.
    """
    if not rows:
        raise IngestError("sql", "the query returned no rows")
    out: list[str] = []
    for row in rows:
        try:
            text = template.format_map(dict(row))
        except (KeyError, IndexError) as exc:
            columns = ", ".join(sorted(str(k) for k in row))
            raise IngestError("sql", f"template field {exc} is not a column ({columns})") from None
        except ValueError as exc:
            raise IngestError("sql", f"bad template: {exc}") from None
        if text.strip():
            out.append(text.strip())
    if not out:
        raise IngestError("sql", "every row rendered empty")
    return out
