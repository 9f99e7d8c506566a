"""A fake snowflake-connector cursor for the dynamic resources' tests: records every statement and answers
each from a list of result sets per statement prefix (consumed in order), the rows shaped as Snowflake
documents them for that statement."""

from __future__ import annotations


class FakeCursor:
    """Answers SHOW statements from `answers` (a list per statement prefix, consumed in order)."""

    def __init__(self, answers: dict[str, list[list[dict]]] | None = None):
        self.answers = {k: list(v) for k, v in (answers or {}).items()}
        self.statements: list[str] = []
        self.streams: list[bytes] = []
        self.description: list[tuple] | None = None
        self._rows: list[tuple] = []

    def execute(self, statement: str, file_stream=None):
        self.statements.append(statement)
        if file_stream is not None:
            self.streams.append(file_stream.read())
        found = next((v for k, v in self.answers.items() if statement.startswith(k)), None)
        rows = found.pop(0) if found else []
        names = sorted({k for row in rows for k in row})
        self.description = [(n.upper(),) for n in names]
        self._rows = [tuple(row.get(n) for n in names) for row in rows]

    def fetchall(self):
        return self._rows
