"""Hardened, streaming XML reading (XML 读取) for adapters.

Departments' XML is parsed with lxml's `iterparse` and these options, always:
`resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False`. On top of
that, any DOCTYPE or ENTITY declaration is refused (`xml_unsafe`) twice over: by a scan of
the bytes before libxml2 sees them, and by the parsed document's own DOCTYPE info. None of
the exchange formats needs one, and a DOCTYPE is where external entities (a local file, a
URL) and entity bombs ("billion laughs") hide.
A declared encoding other than UTF-8 or GB18030 (and its subsets GBK, GB2312) is refused
as `xml_encoding`: the departments send nothing else, and an exotic one (UTF-7) lets a
document say other things to the parser than to anything that reads its bytes.
A document that is not well-formed is refused as `xml_malformed`, with line and column;
the parser's message is masked (it never quotes attribute values, but ID-like runs are
masked all the same).

`iter_elements` yields the children of the root one by one and clears each after use,
so memory stays flat however many records a file holds.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Iterator
from os import PathLike
from typing import IO, BinaryIO

from lxml import etree

from gateway.adapter import SourceFile
from gateway.errors import FileRejected
from gateway.masking import scrub_message

Source = BinaryIO | str | PathLike[str]

HARDENED = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "attribute_defaults": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
ENCODINGS = {"utf-8", "utf8", "gb18030", "gbk", "gb2312"}
_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*?\bencoding\s*=\s*[\"']([^\"']*)[\"']")
# DOCTYPE and ENTITY only ever appear as declarations; any spelling of them is refused.
_UNSAFE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_UNSAFE_OVERLAP = 16
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+$")
_HEAD = 1024
UNSAFE_DETAIL = (
    "the document declares a DOCTYPE or an ENTITY; DTDs and entities are refused because they can read "
    "local files or expand without bound. Export the data without a DOCTYPE"
)


class DeclarationGuard:
    """The head already read for the declaration check, then the rest of the stream;
    refuses the document at the first DOCTYPE or ENTITY declaration, before the parser
    has seen those bytes (a declaration split across two reads is found too)."""

    def __init__(self, rest: IO[bytes], head: bytes = b""):
        self._head, self._rest = head, rest
        self._tail = b""

    def read(self, size: int = -1) -> bytes:
        want = size if size and size > 0 else 1 << 16
        if self._head:
            chunk, self._head = self._head[:want], self._head[want:]
        else:
            chunk = self._rest.read(want)
        window = self._tail + chunk
        if _UNSAFE.search(window):
            raise FileRejected("xml_unsafe", UNSAFE_DETAIL)
        self._tail = window[-_UNSAFE_OVERLAP:]
        return chunk


@contextlib.contextmanager
def _checked(source: Source) -> Iterator[tuple[DeclarationGuard, bool]]:
    """`source` opened if it is a path, its encoding declaration checked; yields the
    guarded stream and whether the document declares an encoding."""
    with contextlib.ExitStack() as stack:
        stream: IO[bytes] = source if hasattr(source, "read") else stack.enter_context(open(source, "rb"))  # type: ignore[assignment]
        head = stream.read(_HEAD)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[:2].count(0):
            raise FileRejected("xml_encoding", "the document is UTF-16 or UTF-32; send it as UTF-8 or GB18030")
        declared = _DECLARATION.match(head)
        if declared and declared.group(1).decode("ascii", "replace").lower() not in ENCODINGS:
            name = declared.group(1).decode("ascii", "replace")[:20]
            raise FileRejected("xml_encoding", f"the document declares encoding {name!r}; send it as UTF-8 or GB18030")
        yield DeclarationGuard(stream, head), declared is not None


def local_name(element: etree._Element) -> str:
    """The tag without its namespace (`{ns}sheet` -> `sheet`)."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _malformed(exc: etree.XMLSyntaxError) -> FileRejected:
    line, column = exc.position if exc.position else (exc.lineno, exc.offset)
    message = scrub_message(_POSITION_SUFFIX.sub("", str(exc.msg or "")), 160)
    return FileRejected("xml_malformed", f"line {line}, column {column}: {message}", row=line or None)


def _refuse_doctype(element: etree._Element) -> None:
    # Defence in depth: the byte scan has stopped any declaration already.
    info = element.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None or info.system_url:
        raise FileRejected("xml_unsafe", UNSAFE_DETAIL)


def root_tag(source: Source) -> str:
    """The root element's local name, reading only up to its start tag. A DOCTYPE is
    refused as everywhere else; nothing is resolved or fetched either way."""
    with _checked(source) as (stream, _):
        try:
            for _, element in etree.iterparse(stream, events=("start",), **HARDENED):
                _refuse_doctype(element)
                return local_name(element)
        except etree.XMLSyntaxError as exc:
            raise _malformed(exc) from None
    raise FileRejected("xml_malformed", "the document has no root element")


def iter_elements(
    source: Source,
    tags: Collection[str] | None = None,
    *,
    root: str | None = None,
    root_hint: str = "",
    undeclared_encoding: str | None = None,
) -> Iterator[tuple[int, etree._Element]]:
    """Yield `(position, element)` for each child of the root whose local name is in
    `tags` (every child when `tags` is None), once the element is complete.

    `position` counts the yielded elements from 1. Read what you need before asking for
    the next one: the element is cleared then. The root's attributes stay readable
    through `element.getparent()`. `root`, when given, is the root's required local name
    (`xml_root` otherwise; `root_hint` is added to that message). A document without an
    encoding declaration is UTF-8 to an XML parser; `undeclared_encoding` reads it as
    another (a GB18030 export that forgot its declaration).
    """
    depth = 0
    position = 0
    with _checked(source) as (stream, declared):
        encoding = None if declared else undeclared_encoding
        try:
            for event, element in etree.iterparse(stream, events=("start", "end"), encoding=encoding, **HARDENED):
                if event == "start":
                    if depth == 0:
                        _refuse_doctype(element)
                        if root is not None and local_name(element) != root:
                            raise FileRejected(
                                "xml_root", f"the root element is <{local_name(element)}>, expected <{root}>{root_hint}"
                            )
                    depth += 1
                    continue
                depth -= 1
                if depth != 1:
                    continue  # inside a record (its parent still needs it), or the root itself
                if tags is None or local_name(element) in tags:
                    position += 1
                    yield position, element
                # Clear the finished child and drop the ones before it (comments included),
                # so the tree never holds more than one record.
                element.clear(keep_tail=False)
                parent = element.getparent()
                if parent is not None:
                    while element.getprevious() is not None:
                        del parent[0]
        except etree.XMLSyntaxError as exc:
            raise _malformed(exc) from None


def check_declared_encoding(source: SourceFile) -> None:
    """Refuse an XML file declared GB18030 (GBK, GB2312) whose bytes are UTF-8 with
    Chinese in them (`xml_encoding`): read by its declaration, every name would be
    stored as mojibake. `source` is a staged `SourceFile`: the sniffer has already
    found whether the whole file is strict UTF-8."""
    if source.encoding not in ("utf-8", "utf-8-sig"):
        return
    with source.open_binary() as handle:
        head = handle.read(_HEAD)
        declared = _DECLARATION.match(head)
        if not declared or not declared.group(1).lower().startswith(b"gb"):
            return
        handle.seek(0)
        while chunk := handle.read(1 << 20):
            if not chunk.isascii():
                name = declared.group(1).decode("ascii", "replace")[:20]
                raise FileRejected(
                    "xml_encoding",
                    f"the document declares encoding {name!r} but is written in UTF-8; correct the declaration "
                    "to encoding=\"UTF-8\" (or save the file as GB18030)",
                )
