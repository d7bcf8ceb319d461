"""Writing received conversations out as JSON Lines or CSV.

JSON Lines keeps the documents exactly as Olark sent them (one per line), so
they can be replayed or loaded anywhere; CSV is one row per conversation for
a spreadsheet. Rows are streamed from the database, never held all at once.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO

from chathooks.receiver.store import ConversationSummary, ReceivedStore

__all__ = ["CSV_COLUMNS", "ExportFormat", "export"]

#: The CSV header row, in order.
CSV_COLUMNS = (
    "id",
    "kind",
    "visitor_name",
    "visitor_email",
    "first_timestamp",
    "last_timestamp",
    "message_count",
    "tags",
)

# A cell starting with one of these is run as a formula by spreadsheet programs; visitor
# text is untrusted, so such cells get a leading apostrophe (OWASP's CSV-injection advice).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


async def export(
    store: ReceivedStore, output: TextIO, *, format: ExportFormat, all_versions: bool = False
) -> int:
    """Write every conversation to ``output``; returns the number of records written.

    ``jsonl`` writes the current document of each conversation, or every
    version's document with ``all_versions``; ``csv`` writes one row per
    conversation (``all_versions`` does not apply).
    """
    if format is ExportFormat.CSV:
        return await _export_csv(store, output)
    return await _export_jsonl(store, output, all_versions=all_versions)


async def _export_jsonl(store: ReceivedStore, output: TextIO, *, all_versions: bool) -> int:
    count = 0
    if all_versions:
        async for _, version in store.stream_versions():
            output.write(json.dumps(version.document, ensure_ascii=False) + "\n")
            count += 1
    else:
        async for _, document in store.stream_conversations():
            output.write(json.dumps(document, ensure_ascii=False) + "\n")
            count += 1
    return count


async def _export_csv(store: ReceivedStore, output: TextIO) -> int:
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    async for summary, _ in store.stream_conversations():
        writer.writerow(_csv_row(summary))
        count += 1
    return count


def _csv_row(summary: ConversationSummary) -> list[str]:
    return [
        _cell(summary.id),
        summary.kind,
        _cell(summary.visitor_name or ""),
        _cell(summary.visitor_email or ""),
        _iso(summary.first_message_at),
        _iso(summary.last_message_at),
        str(summary.message_count),
        _cell(";".join(summary.tags)),
    ]


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _iso(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds")
