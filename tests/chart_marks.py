"""Reads the weekly page's charts back: each mark's exact value (``data-value``), the texts and
tooltips people read, and each chart's <title>/<desc> (its text alternative)."""

from __future__ import annotations

from html.parser import HTMLParser


class Chart(HTMLParser):
    """Marks, texts (with their tooltips), <title> and <desc> of the charts in some HTML."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.marks: list[dict[str, str]] = []
        self.texts: list[str] = []
        self.tooltips: list[str] = []
        self.svg_titles: list[str] = []
        self.descs: list[str] = []
        self.notes: list[str] = []
        self._stack: list[str] = []
        self._parent: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "data-value" in values:
            self.marks.append({**values, "tag": tag})
        if tag == "p" and "note" in values.get("class", ""):
            self.notes.append("")
        self._parent.append(self._stack[-1] if self._stack else "")
        self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._stack:
            self._stack.pop()
            self._parent.pop()

    def handle_data(self, data: str) -> None:
        if not self._stack:
            return
        tag, parent = self._stack[-1], self._parent[-1]
        if tag == "text":
            self.texts.append(data)
        elif tag == "title" and parent == "svg":
            self.svg_titles.append(data)
        elif tag == "title":
            self.tooltips.append(data)
        elif tag == "desc":
            self.descs.append(data)
        elif tag == "p" and self.notes:
            self.notes[-1] += data

    def values(self, tag: str = "rect") -> list[tuple[str, str, str]]:
        return [
            (m["data-series"], m["data-label"], m["data-value"])
            for m in self.marks
            if m["tag"] == tag
        ]
