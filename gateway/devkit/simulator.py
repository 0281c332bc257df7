"""A partner simulator for tests, rehearsals and the README tour: the housing registry's
API and the national platform's API exactly as `docs/pulls.md` (after the departments'
format notes) describes them, served over real sockets on loopback.

    gateway simulate housing|platform|all --port 8701 --token demo-token

- `GET /api/v1/occupancy-changes?since=CURSOR&limit=N`: the housing specimen
  (gateway/demo_data/housing_occupancy_page1.json) as the first page, byte for byte, then
  generated items, `nextCursor` = `<updatedAt of the last item>#<items so far>`, absent on
  the last page.
- `GET /exchange/inbox?since=CURSOR`: the platform specimen as the first `JHXX`, then
  generated pages of `XCXX` requests and `TBXX` notices; after the last page an empty
  `JHXX` whose `CURSOR` is the one asked with.
- `POST /exchange/feedback`: an `FKXX` answer, checked (well-formed, a request it sent,
  PDJG 1 or 0, BZ when not found) and recorded; answered `FKHZ JSZT="1"` (or 400 with
  `JSZT="0"` and the reason).
- Every API call needs `Authorization: Bearer <token>` (401 otherwise).
- Faults: a seeded random generator answers a share of calls 429 (with `Retry-After`) or
  502, the same sequence for the same seed; tests also queue exact responses
  (`faults.queue(429, 429, 502)`), corrupt a page, or stop and restart the server.
- `--serve FILE.xml` (`serve_documents`): the given `JHXX` documents are the inbox instead
  of the specimen and the generated pages, and answers to their requests are accepted: a
  rehearsal plays the month an office chooses.
- `POST /exchange/requests`: the county's own `JHXX` of `XCXX` requests, checked and
  recorded (`GET /_sim/county-requests`); each is answered (`FKXX`, found, one `CXJG` per
  category asked) in the inbox `answer_delay` seconds later (`--answer-delay`).
- `POST /exchange/notices`: the county's own `JHXX` of `TBXX` notices, checked (XM, GMSFHM,
  XJZD, LB, FQSJ) and recorded (`GET /_sim/county-notices`); each asking for feedback
  (XYFK 1) is answered (`FKXX`, received) in the inbox `answer_delay` seconds later.
- `GET /_sim/feedback` lists the feedback received (message ids and results only);
  `GET /_sim/requests` the calls served.

Generated people carry valid ID numbers (ISO 7064 check characters); some are people the
county's own specimens know (the housing and hospital specimens), so that assist-checks
find something.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

log = logging.getLogger("gateway.devkit.simulator")

CHINA = dt.timezone(dt.timedelta(hours=8))
OUR_COUNTY = "440781"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SURNAMES = "陈李黄张王刘林吴周梁何郭邓罗谭"
_GIVEN_F = ("丽", "秀英", "春梅", "小红", "美玲", "婷", "晓燕", "慧敏", "雪梅", "丹")
_GIVEN_M = ("强", "伟", "建华", "志明", "国平", "俊杰", "文斌", "家豪", "永康", "海")
_COUNTIES = ("510722", "341222", "430102", "360730", "452402", "441523")
_COMMUNITIES = ("环城南社区", "舜德社区", "西湖社区", "北坑社区", "桥湖社区")
_ROADS = ("环城南路", "舜德路", "通济路", "西宁路", "台西路")
# People the county's specimens know (housing, hospital): assist-checks about them find records.
KNOWN_PEOPLE = (
    ("陈丽", "440781199203154325", "1992-03-15"),
    ("彭小红", "430102199303031082", "1993-03-03"),
)


def id_check_char(body17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an ID number's first 17 digits."""
    total = sum(int(d) * w for d, w in zip(body17, _WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def make_id(division: str, born: dt.date, sequence: int) -> str:
    body = f"{division}{born:%Y%m%d}{sequence % 1000:03d}"
    return body + id_check_char(body)


def _person(rng: random.Random, *, female: bool | None = None, division: str = OUR_COUNTY, born_from: int = 1975, born_to: int = 2000) -> dict[str, str]:
    female = rng.random() < 0.5 if female is None else female
    born = dt.date(rng.randint(born_from, born_to), rng.randint(1, 12), rng.randint(1, 28))
    sequence = rng.randrange(0, 500) * 2 + (0 if female else 1)
    name = rng.choice(_SURNAMES) + rng.choice(_GIVEN_F if female else _GIVEN_M)
    return {"name": name, "id": make_id(division, born, sequence), "born": born.isoformat()}


# -- faults ---------------------------------------------------------------------------------


@dataclass
class Faults:
    """Which calls fail: queued responses first, then the seeded generator."""

    seed: int = 0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    retry_after: int = 1
    down: bool = False
    """Answer nothing at all: close the connection at once (the partner is down)."""
    _queue: deque[tuple[int, int | None]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def queue(self, *statuses: int, retry_after: int | None = None) -> None:
        """The next calls answer these statuses (429 and 503 with `Retry-After`)."""
        with self._lock:
            for status in statuses:
                self._queue.append((status, retry_after if retry_after is not None else self.retry_after))

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def next(self) -> tuple[int, int | None] | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            draw = self._rng.random()
        if draw < self.throttle_rate:
            return 429, self.retry_after
        if draw < self.throttle_rate + self.error_rate:
            return 502, None
        return None


# -- the housing registry -------------------------------------------------------------------


class HousingFeed:
    """Occupancy changes: the specimen's two items, then generated ones."""

    def __init__(self, items: int = 40, seed: int = 0):
        self.specimen = (files("gateway") / "demo_data" / "housing_occupancy_page1.json").read_bytes()
        self.items: list[dict[str, Any]] = list(json.loads(self.specimen)["items"])
        self._rng = random.Random(f"housing-{seed}")
        self._lock = threading.Lock()
        self.broken: set[int] = set()
        """Offsets (0: the first page) whose page is served cut in the middle (malformed JSON)."""
        self.add_generated(items)

    def add_generated(self, count: int) -> None:
        with self._lock:
            for _ in range(count):
                self.items.append(self._item(len(self.items)))

    def _item(self, index: int) -> dict[str, Any]:
        rng = self._rng
        owner = _person(rng)
        updated = dt.datetime(2026, 10, 23, 8, 0, tzinfo=CHINA) + dt.timedelta(minutes=37 * index)
        occupants = [{"name": owner["name"], "idNo": owner["id"], "role": "owner", "moveIn": "2024-05-01", "moveOut": None}]
        rented = rng.random() < 0.3
        if rented:
            tenant = _person(rng, division=rng.choice(_COUNTIES))
            occupants = [{"name": tenant["name"], "idNo": tenant["id"], "role": "tenant", "moveIn": f"{updated:%Y-%m-%d}", "moveOut": None}]
        road = rng.choice(_ROADS)
        return {
            "propertyCertNo": f"粤(2026)台山市不动产权第{9_000_000 + index:07d}号",
            "divisionCode": OUR_COUNTY,
            "community": rng.choice(_COMMUNITIES),
            "address": f"广东省台山市台城街道{road}{rng.randint(1, 300)}号",
            "building": str(rng.randint(1, 12)),
            "unit": str(rng.randint(1, 4)),
            "room": f"{rng.randint(1, 18)}0{rng.randint(1, 4)}",
            "owners": [{"name": owner["name"], "idNo": owner["id"]}],
            "occupants": occupants,
            "rentalRegistered": rented and rng.random() < 0.8,
            "updatedAt": updated.isoformat(),
        }

    def page(self, since: str | None, limit: int) -> bytes:
        body = self._page(since, limit)
        offset = int(since.rpartition("#")[2]) if since else 0
        return body[: len(body) // 2] if offset in self.broken else body

    def _page(self, since: str | None, limit: int) -> bytes:
        if not since:
            return self.specimen
        offset_text = since.rpartition("#")[2]
        if not offset_text.isdigit():
            raise ValueError(f"unknown cursor {since!r}")
        offset = int(offset_text)
        with self._lock:
            chunk = self.items[offset : offset + limit]
            end = offset + len(chunk)
            document: dict[str, Any] = {"items": chunk}
            if end < len(self.items):
                document["nextCursor"] = f"{chunk[-1]['updatedAt']}#{end}"
        return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


# -- the national platform --------------------------------------------------------------------


@dataclass
class Feedback:
    message_id: str
    result: str
    answered_at: str
    received_at: str
    body: bytes = field(repr=False)


class PlatformFeed:
    """The inbox: the specimen as page 1, then generated pages; and the feedback received."""

    def __init__(
        self, pages: int = 3, per_page: int = 4, seed: int = 0, record_dir: Path | None = None, serve: list[bytes] | None = None,
    ):
        """`serve`: `JHXX` documents to serve as the inbox instead of the specimen and the
        generated pages (`gateway simulate platform --serve FILE.xml`), in that order."""
        self.specimen = (files("gateway") / "demo_data" / "national_platform_inbound_20261102.xml").read_bytes()
        self._serial = 0
        self._rng = random.Random(f"platform-{seed}")
        self._lock = threading.Lock()
        self.feedback: list[Feedback] = []
        self.record_dir = record_dir
        self.answer_delay = 0.0
        """Seconds before the other side's answer to one of the county's requests is in the inbox."""
        self.county_requests: list[dict[str, str]] = []
        self.county_notices: list[dict[str, str]] = []
        self._answers: list[tuple[float, str, str]] = []  # (release at, FKXX element, sender)
        self.pages: list[tuple[str, bytes]] = []
        self.requests: set[str] = set()
        self._count = 0
        for document in serve or [self.specimen]:
            self.serve(document)
        for _ in range(0 if serve else pages):
            messages, sent, sender = self._generated_page(per_page)
            self.add_page(messages, sent=sent, sender=sender)

    def serve(self, document: bytes) -> str:
        """Append a `JHXX` document to the inbox as it is (a CURSOR is added when it has
        none); its requests may be answered. Returns its CURSOR."""
        root = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
        index = len(self.pages)
        if root.tag != "JHXX":
            raise ValueError(f"served document {index + 1}: the root element is <{root.tag}>, expected <JHXX>")
        if not root.get("CURSOR"):
            root.set("CURSOR", f"served-{index + 1:04d}")
            document = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        with self._lock:
            if root.get("CURSOR") in {cursor for cursor, _ in self.pages}:
                raise ValueError(f"served document {index + 1}: CURSOR {root.get('CURSOR')!r} is used by an earlier one")
            self.pages.append((root.get("CURSOR"), document))
            self.requests |= {el.get("XXBH") for el in root if el.tag == "XCXX" or (el.tag == "TBXX" and el.get("XYFK") == "1")}
            self._sent = dt.datetime.fromisoformat(root.get("FSSJ") or "2026-11-02T00:00:00+08:00")
            self._count += len(root)
        return root.get("CURSOR")

    # messages --------------------------------------------------------------------------

    def _generated(self, sent: dt.datetime, sender: str) -> str:
        """One message from county `sender`: about a woman registered there who lives here
        (HJD_TO_XJZD), or about one of ours who lives there now (XJZD_TO_HJD)."""
        self._serial += 1
        rng = self._rng
        draw = rng.random()
        residence = "广东省台山市" + rng.choice(("台城街道", "水步镇", "大江镇", "四九镇"))
        if draw < 0.25:
            name, number, born = KNOWN_PEOPLE[0]  # registered here, living in `sender`'s county
            direction, residence = "XJZD_TO_HJD", f"{sender}行政区内"
        elif draw < 0.4 and sender == KNOWN_PEOPLE[1][1][:6]:
            name, number, born = KNOWN_PEOPLE[1]
            direction = "HJD_TO_XJZD"
        else:
            person = _person(rng, female=True, division=sender, born_from=1980, born_to=2002)
            name, number, born, direction = person["name"], person["id"], person["born"], "HJD_TO_XJZD"
        day = f"{sent:%Y-%m-%d}"
        dx = f'<DX XM={quoteattr(name)} GMSFHM="{number}" CSRQ="{born}" XJZD={quoteattr(residence)}/>'
        if rng.random() < 0.75:
            categories = rng.choice(("01,03,07", "01,05", "01,02,04", "09", "01"))
            return (
                f'<XCXX XXBH="XC-{sender}-{sent:%Y%m%d}-{self._serial:04d}" JJCD="{rng.choice("12")}" FQSJ="{day}" '
                f'FX="{direction}">{dx}<XCNR LB="{categories}">{escape("请协查 " + categories)}</XCNR></XCXX>'
            )
        category = rng.choice(("09", "05", "10"))
        flag = "1" if category in ("09", "10") else "0"
        return (
            f'<TBXX XXBH="TB-{sender}-{sent:%Y%m%d}-{self._serial:04d}" LB="{category}" XYFK="{flag}" FQSJ="{day}">'
            f'{dx}<TBNR>{escape("通报 " + category)}</TBNR></TBXX>'
        )

    def _generated_page(self, count: int, sent: dt.datetime | None = None) -> tuple[list[str], dt.datetime, str]:
        sent = sent or self._sent + dt.timedelta(days=len(self.pages))
        sender = self._rng.choice(_COUNTIES)
        return [self._generated(sent, sender) for _ in range(count)], sent, sender

    def add_page(self, messages: list[str], *, sent: dt.datetime | None = None, sender: str | None = None) -> str:
        """Append a page of `XCXX`/`TBXX` elements (XML text) sent by county `sender`;
        return its CURSOR."""
        with self._lock:
            sent = sent or self._sent + dt.timedelta(days=len(self.pages))
            self._count += len(messages)
            cursor = f"{sent:%Y%m%d%H%M%S}-{self._count:04d}"
            body = "\n  ".join(messages)
            document = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<JHXX BBH="2.0" FSDW="{sender or _sender(messages)}" JSDW="{OUR_COUNTY}" FSSJ="{sent.isoformat()}" CURSOR="{cursor}">\n'
                f"  {body}\n</JHXX>\n"
            ).encode("utf-8")
            for message in messages:
                element = etree.fromstring(message.encode("utf-8"))
                if element.tag == "XCXX" or (element.tag == "TBXX" and element.get("XYFK") == "1"):
                    self.requests.add(element.get("XXBH"))  # answerable: requests, and notices asking for feedback
            self.pages.append((cursor, document))
            return cursor

    def add_requests(self, count: int, *, sent: dt.datetime | None = None) -> str:
        """A page of `count` generated messages; return its CURSOR."""
        messages, when, sender = self._generated_page(count, sent)
        return self.add_page(messages, sent=when, sender=sender)

    def corrupt(self, index: int) -> None:
        """Make page `index` (0-based) malformed XML: cut in the middle of its messages,
        the root's start tag (and its CURSOR) intact."""
        with self._lock:
            cursor, document = self.pages[index]
            cut = document.index(b">", document.index(b"<JHXX")) + 1
            self.pages[index] = (cursor, document[: cut + (len(document) - cut) // 2] + b"<<<")

    def repair(self, index: int, document: bytes) -> None:
        with self._lock:
            self.pages[index] = (self.pages[index][0], document)

    def take_request(self, body: bytes) -> tuple[int, bytes]:
        """Check and record the county's own `JHXX` of `XCXX` requests; each is answered
        (found, per category) `answer_delay` seconds later, through the inbox."""
        import time

        now = dt.datetime.now(CHINA).replace(microsecond=0).isoformat()
        try:
            root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
        except etree.XMLSyntaxError as exc:
            return 400, f'<?xml version="1.0" encoding="UTF-8"?>\n<FKHZ JSZT="0" CWXX={quoteattr("not well-formed XML: " + exc.msg)} JSSJ="{now}"/>\n'.encode()
        messages = [el for el in root if el.tag == "XCXX"]
        problem = ""
        if root.tag != "JHXX":
            problem = f"the root element is <{root.tag}>, expected <JHXX>"
        elif not messages:
            problem = "no XCXX in the document"
        elif not (root.get("FSDW") and root.get("JSDW")):
            problem = "FSDW and JSDW are required"
        for message in messages:
            person = message.find("DX")
            if not problem and (person is None or not person.get("GMSFHM") or not person.get("XM")):
                problem = f"{message.get('XXBH')}: DX needs XM and GMSFHM"
            if not problem and not (message.find("XCNR") is not None and message.find("XCNR").get("LB")):
                problem = f"{message.get('XXBH')}: XCNR LB is required"
        if problem:
            return 400, f'<?xml version="1.0" encoding="UTF-8"?>\n<FKHZ JSZT="0" CWXX={quoteattr(problem)} JSSJ="{now}"/>\n'.encode()
        release = time.monotonic() + self.answer_delay
        with self._lock:
            for message in messages:
                number = message.get("XXBH")
                self.county_requests.append({"XXBH": number, "FSDW": root.get("FSDW"), "JSDW": root.get("JSDW"), "JJCD": message.get("JJCD"),
                                             "FQSJ": message.get("FQSJ"), "received_at": now})
                answered = dt.datetime.fromisoformat(message.get("FQSJ")).replace(hour=10, tzinfo=CHINA) + dt.timedelta(days=1)
                findings = "".join(
                    f'<CXJG LB="{code}">{escape("（模拟）已核实 " + code)}</CXJG>' for code in message.find("XCNR").get("LB").split(",")
                )
                answer = f'<FKXX XXBH={quoteattr(number)} PDJG="1" FKSJ="{answered.isoformat()}">{findings}</FKXX>'
                self._answers.append((release, answer, root.get("JSDW")))
        log.info("county request(s) received: %s", ", ".join(m.get("XXBH") for m in messages))
        return 200, f'<?xml version="1.0" encoding="UTF-8"?>\n<FKHZ JSZT="1" JSSJ="{now}"/>\n'.encode()

    def take_notice(self, body: bytes) -> tuple[int, bytes]:
        """Check and record the county's own `JHXX` of `TBXX` notices (`GET /_sim/county-notices`);
        each asking for feedback (XYFK 1) is answered (`FKXX`, received, one `CXJG` of its
        category) `answer_delay` seconds later, through the inbox. A notice without a name,
        an ID number or a current residence (XJZD) is refused (400)."""
        import time

        now = dt.datetime.now(CHINA).replace(microsecond=0).isoformat()
        try:
            root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
        except etree.XMLSyntaxError as exc:
            return 400, f'<?xml version="1.0" encoding="UTF-8"?>\n<FKHZ JSZT="0" CWXX={quoteattr("not well-formed XML: " + exc.msg)} JSSJ="{now}"/>\n'.encode()
        messages = [el for el in root if el.tag == "TBXX"]
        problem = ""
        if root.tag != "JHXX":
            problem = f"the root element is <{root.tag}>, expected <JHXX>"
        elif not messages:
            problem = "no TBXX in the document"
        elif not (root.get("FSDW") and root.get("JSDW")):
            problem = "FSDW and JSDW are required"
        for message in messages:
            person = message.find("DX")
            if not problem and (person is None or not person.get("GMSFHM") or not person.get("XM") or not person.get("XJZD")):
                problem = f"{message.get('XXBH')}: DX needs XM, GMSFHM and XJZD"
            if not problem and not (message.get("LB") and message.get("FQSJ")):
                problem = f"{message.get('XXBH')}: LB and FQSJ are required"
        if problem:
            return 400, f'<?xml version="1.0" encoding="UTF-8"?>\n<FKHZ JSZT="0" CWXX={quoteattr(problem)} JSSJ="{now}"/>\n'.encode()
        release = time.monotonic() + self.answer_delay
        with self._lock:
            for message in messages:
                number = message.get("XXBH")
                self.county_notices.append({"XXBH": number, "FSDW": root.get("FSDW"), "JSDW": root.get("JSDW"), "LB": message.get("LB"),
                                            "XYFK": message.get("XYFK"), "FQSJ": message.get("FQSJ"), "received_at": now})
                if message.get("XYFK") == "1":
                    answered = dt.datetime.fromisoformat(message.get("FQSJ")).replace(hour=10, tzinfo=CHINA) + dt.timedelta(days=1)
                    finding = f'<CXJG LB={quoteattr(message.get("LB"))}>{escape("（模拟）已接收并核实")}</CXJG>'
                    self._answers.append((release, f'<FKXX XXBH={quoteattr(number)} PDJG="1" FKSJ="{answered.isoformat()}">{finding}</FKXX>',
                                          root.get("JSDW")))
        log.info("county notice(s) received: %s", ", ".join(m.get("XXBH") for m in messages))
        return 200, f'<?xml version="1.0" encoding="UTF-8"?>\n<FKHZ JSZT="1" JSSJ="{now}"/>\n'.encode()

    def _release_answers(self) -> None:
        import time

        with self._lock:
            due = [a for a in self._answers if a[0] <= time.monotonic()]
            self._answers = [a for a in self._answers if a[0] > time.monotonic()]
        for _, answer, sender in due:
            self.add_page([answer], sender=sender)

    def page(self, since: str | None) -> bytes:
        self._release_answers()
        with self._lock:
            if not since:
                return self.pages[0][1]
            cursors = [cursor for cursor, _ in self.pages]
            if since not in cursors:
                raise ValueError(f"unknown cursor {since!r}")
            position = cursors.index(since)
            if position + 1 < len(self.pages):
                return self.pages[position + 1][1]
            sent = self._sent + dt.timedelta(days=len(self.pages) - 1)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<JHXX BBH="2.0" FSDW="000000" JSDW="{OUR_COUNTY}" FSSJ="{sent.isoformat()}" CURSOR="{since}"/>\n'
        ).encode("utf-8")

    # feedback ----------------------------------------------------------------------------

    def take_feedback(self, body: bytes) -> tuple[int, bytes]:
        """Check and record one FKXX; (HTTP status, FKHZ answer)."""
        number = ""
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            root = etree.fromstring(body, parser)
            number = root.get("XXBH") or ""
            problem = _feedback_problem(root, self.requests)
        except etree.XMLSyntaxError as exc:
            problem = f"not well-formed XML: {exc.msg}"
        now = dt.datetime.now(CHINA).replace(microsecond=0).isoformat()
        if problem:
            answer = f'<?xml version="1.0" encoding="UTF-8"?>\n<FKHZ XXBH={quoteattr(number)} JSZT="0" CWXX={quoteattr(problem)} JSSJ="{now}"/>\n'
            return 400, answer.encode("utf-8")
        with self._lock:
            self.feedback.append(Feedback(number, root.get("PDJG"), root.get("FKSJ"), now, body))
            serial = len(self.feedback)
        if self.record_dir is not None:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            (self.record_dir / f"FKXX-{serial:04d}-{number}.xml").write_bytes(body)
        log.info("feedback received: %s PDJG=%s", number, root.get("PDJG"))
        return 200, f'<?xml version="1.0" encoding="UTF-8"?>\n<FKHZ XXBH={quoteattr(number)} JSZT="1" JSSJ="{now}"/>\n'.encode("utf-8")


def _sender(messages: list[str]) -> str:
    for message in messages:
        found = message.find('XXBH="')
        if found >= 0:
            code = message[found + 6 :].split("-")[1] if message[found + 6 :].count("-") >= 1 else ""
            if code.isdigit() and len(code) == 6:
                return code
    return _COUNTIES[0]


def _feedback_problem(root: etree._Element, known: set[str]) -> str:
    if root.tag != "FKXX":
        return f"the root element is <{root.tag}>, expected <FKXX>"
    number = root.get("XXBH")
    if not number:
        return "XXBH is missing"
    if number not in known:
        return f"no request {number} was sent to you"
    result = root.get("PDJG")
    if result not in ("0", "1"):
        return "PDJG must be 1 or 0"
    if not root.get("FKSJ"):
        return "FKSJ is missing"
    if result == "0" and not (root.get("BZ") or "").strip():
        return "BZ (remark) is required when the person was not found"
    if result == "1" and not len(root):
        return "a found answer carries the values found per category"
    return ""


# -- the server -----------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    simulator: PartnerSimulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        # Recorded before the answer leaves: a caller that got it can count on the record.
        self.server.simulator.record(self.command, self.path.split("?")[0], status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8", headers)

    def _gate(self) -> bool:
        """Faults and the token; True when the call may be served."""
        simulator = self.server.simulator
        if simulator.faults.down:
            self.close_connection = True
            self.connection.close()
            simulator.record(self.command, self.path.split("?")[0], 0)
            return False
        fault = simulator.faults.next()
        if fault is not None:
            status, retry_after = fault
            headers = {"Retry-After": str(retry_after)} if status in (429, 503) and retry_after is not None else {}
            self._text(status, f"{status} {HTTPStatus(status).phrase}\n", headers)
            return False
        if self.headers.get("Authorization") != f"Bearer {simulator.token}":
            self._text(401, "401 Unauthorized: send Authorization: Bearer <token>\n", {"WWW-Authenticate": 'Bearer realm="partner"'})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        simulator = self.server.simulator
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        if parts.path == "/_sim/feedback" and simulator.platform is not None:
            listing = [
                {"XXBH": f.message_id, "PDJG": f.result, "FKSJ": f.answered_at, "received_at": f.received_at}
                for f in simulator.platform.feedback
            ]
            self._send(200, json.dumps(listing, ensure_ascii=False, indent=2).encode("utf-8"), "application/json")
            return
        if parts.path == "/_sim/county-notices" and simulator.platform is not None:
            self._send(200, json.dumps(simulator.platform.county_notices, ensure_ascii=False, indent=2).encode("utf-8"), "application/json")
            return
        if parts.path == "/_sim/county-requests" and simulator.platform is not None:
            self._send(200, json.dumps(simulator.platform.county_requests, ensure_ascii=False, indent=2).encode("utf-8"), "application/json")
            return
        if parts.path == "/_sim/requests":
            self._send(200, json.dumps(simulator.calls, indent=1).encode("utf-8"), "application/json")
            return
        if parts.path == "/api/v1/occupancy-changes" and simulator.housing is not None:
            if not self._gate():
                return
            try:
                limit = int(query.get("limit") or 100)
                body = simulator.housing.page(query.get("since"), max(1, min(limit, 1000)))
            except ValueError as exc:
                self._text(400, f"400 Bad Request: {exc}\n")
                return
            self._send(200, body, "application/json; charset=utf-8")
            return
        if parts.path == "/exchange/inbox" and simulator.platform is not None:
            if not self._gate():
                return
            try:
                body = simulator.platform.page(query.get("since"))
            except ValueError as exc:
                self._text(400, f"400 Bad Request: {exc}\n")
                return
            self._send(200, body, "application/xml; charset=utf-8")
            return
        self._text(404, "404 Not Found\n")

    def do_POST(self) -> None:  # noqa: N802
        simulator = self.server.simulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if path not in ("/exchange/feedback", "/exchange/requests", "/exchange/notices") or simulator.platform is None:
            self._text(404, "404 Not Found\n")
            return
        if not self._gate():
            return
        if path == "/exchange/requests":
            status, answer = simulator.platform.take_request(body)
        elif path == "/exchange/notices":
            status, answer = simulator.platform.take_notice(body)
        else:
            status, answer = simulator.platform.take_feedback(body)
        self._send(status, answer, "application/xml; charset=utf-8")


class PartnerSimulator:
    """Serves the housing API, the platform API, or both, on 127.0.0.1:`port` (0: any free)."""

    def __init__(
        self,
        serve: tuple[str, ...] = ("housing", "platform"),
        *,
        token: str = "demo-token",
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        throttle_rate: float = 0.0,
        error_rate: float = 0.0,
        retry_after: int = 1,
        housing_items: int = 40,
        platform_pages: int = 3,
        per_page: int = 4,
        record_dir: Path | None = None,
        serve_documents: list[bytes] | None = None,
        answer_delay: float = 0.0,
    ):
        unknown = set(serve) - {"housing", "platform"}
        if unknown:
            raise ValueError(f"unknown partner(s) {sorted(unknown)}: housing, platform")
        self.token, self.host, self.port = token, host, port
        self.faults = Faults(seed=seed, throttle_rate=throttle_rate, error_rate=error_rate, retry_after=retry_after)
        self.housing = HousingFeed(housing_items, seed) if "housing" in serve else None
        self.platform = PlatformFeed(platform_pages, per_page, seed, record_dir, serve_documents) if "platform" in serve else None
        if self.platform is not None:
            self.platform.answer_delay = answer_delay
        self.calls: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.calls.append((method, path, status))

    def calls_to(self, path: str) -> list[int]:
        with self._lock:
            return [status for _, called, status in self.calls if called == path]

    def start(self) -> PartnerSimulator:
        server = _Server((self.host, self.port), _Handler)
        server.simulator = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (the partner is down: connections are refused) until `start()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Run in the foreground (the `gateway simulate` command) until interrupted."""
        server = _Server((self.host, self.port), _Handler)
        server.simulator = self
        self.port = server.server_address[1]
        self._server = server
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
            self._server = None

    def __enter__(self) -> PartnerSimulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
