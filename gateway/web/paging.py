"""Paging of the console's lists (分页): the total, which rows are shown, and the links to
the previous and next page that keep every filter. The JSON API pages the same way with
`limit`/`offset`, and says the total in `X-Total-Count` and the neighbours in `Link`
(RFC 8288), so that its answers stay plain lists."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Paging:
    """One page of a list: `limit` rows from `offset` of `total`."""

    path: str
    total: int
    limit: int
    offset: int
    filters: tuple[tuple[str, str], ...] = ()
    """the list's filters as query parameters, empty ones left out"""

    @property
    def first(self) -> int:
        """1-based number of the first row shown (0 when none is)."""
        return min(self.offset + 1, self.total) if self.total else 0

    @property
    def last(self) -> int:
        return min(self.offset + self.limit, self.total)

    def _url(self, offset: int) -> str:
        params = [*self.filters, ("limit", str(self.limit)), ("offset", str(offset))]
        return f"{self.path}?{urlencode(params)}"

    @property
    def previous_url(self) -> str | None:
        return self._url(max(self.offset - self.limit, 0)) if self.offset > 0 else None

    @property
    def next_url(self) -> str | None:
        return self._url(self.offset + self.limit) if self.offset + self.limit < self.total else None

    def link_header(self) -> str:
        """The `Link` header of an API answer (`rel="prev"`, `rel="next"`)."""
        links = []
        if self.previous_url:
            links.append(f'<{self.previous_url}>; rel="prev"')
        if self.next_url:
            links.append(f'<{self.next_url}>; rel="next"')
        return ", ".join(links)


def paging(path: str, total: int, limit: int, offset: int, **filters: object) -> Paging:
    kept = tuple((name, str(value)) for name, value in filters.items() if value not in (None, "", False))
    return Paging(path, total, limit, offset, kept)
