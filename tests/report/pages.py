"""Reading an HTML page back in tests: tables as rows of cell texts, element ids, resources
that would need the network. The standard library's parser, so what is read does not come
from the code that wrote the page."""

from __future__ import annotations

import sqlite3
from html.parser import HTMLParser
from pathlib import Path


class PageReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: dict[str, dict[str, str | None]] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if found.get("id"):
            self.ids[found["id"]] = found
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "table":
            self._table = found.get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def read_page(text: str) -> PageReader:
    reader = PageReader()
    reader.feed(text)
    return reader


def external_resources(reader: PageReader) -> list[str]:
    """Every attribute that would make a browser fetch something from elsewhere."""
    found = []
    for tag, attrs in reader.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            loads = tag in ("script", "img", "link", "iframe") and not value.startswith("#")
            if value and (loads or value.startswith(("http://", "https://", "//"))):
                found.append(f"<{tag} {name}={value}>")
    return found


def stored_trials(path: Path, run: str) -> list[tuple[int, str, str, float | None]]:
    """(number, state, arch, objective) of a run, read with sqlite3 directly."""
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT t.number, t.state, t.arch, t.objective FROM trials t JOIN runs r "
            "ON r.id = t.run_id WHERE r.name = ? ORDER BY t.number",
            (run,),
        ).fetchall()
