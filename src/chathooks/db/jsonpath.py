"""One text value inside a JSON document stored in a column, read by the database itself.

SQLite reads it with ``json_extract`` (a JSON column there is text), PostgreSQL
with ``#>>`` on the document cast to ``json`` (so text columns holding JSON
work too). A path that is missing, or that reaches something other than a
string, gives NULL.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["json_text", "visitor_email_is"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class json_text(FunctionElement[str]):
    """``json_text(column, "visitor", "emailAddress")``: the text at that path, or NULL."""

    type = String()
    inherit_cache = False

    def __init__(self, column: ColumnElement[Any], *path: str) -> None:
        if not path or not all(_KEY.match(key) for key in path):
            raise ValueError(f"a JSON path of plain keys is needed, not {path!r}")
        self.path = path
        super().__init__(column)


@compiles(json_text, "sqlite")
def _sqlite(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    path = "$." + ".".join(element.path)
    return f"json_extract({compiler.process(element.clauses, **kw)}, '{path}')"


@compiles(json_text, "postgresql")
def _postgresql(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    path = "{" + ",".join(element.path) + "}"
    return f"(CAST({compiler.process(element.clauses, **kw)} AS json) #>> '{path}')"


def visitor_email_is(document: ColumnElement[Any], email: str) -> ColumnElement[bool]:
    """Whether the Olark document's ``visitor.emailAddress`` is ``email``.

    The whole address, compared without case and surrounding blanks: never an
    address that merely contains it (``ann@x.com`` is not ``joann@x.com``).
    """
    stored = func.lower(func.trim(json_text(document, "visitor", "emailAddress")))
    return stored == email.strip().lower()
