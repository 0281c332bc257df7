"""The console's message catalogue (issue 20, "Chinese first"): every text a template marks
for translation has its Chinese and its English in gateway/web/locale/; pages are in
Chinese by default, in English when gateway.toml or the user chooses it (a real `gateway
serve` over real HTTP)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from babel.messages.extract import extract_from_dir
from console_helpers import Console, PASSWORDS, served  # noqa: F401 - served: the shared fixture

from gateway.web import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"
# Words a Chinese page shows as they are: codes, formats and the names of things.
ASCII_IN_CHINESE = {"#", "SHA-256", "XXBH", "CSV", "XLSX", "English", "Merkle", "ID", "Console"}


def _template_messages() -> dict[str, str]:
    """msgid -> where it is used, as `pybabel extract -F gateway/web/babel.cfg` finds them."""
    found: dict[str, str] = {}
    for name, line, message, _comments, _context in extract_from_dir(
        str(TEMPLATES), method_map=[("**.html", "jinja2")], options_map={"**.html": {"extensions": "jinja2.ext.i18n"}}
    ):
        assert isinstance(message, str), f"{name}:{line}: plural messages need both forms in the catalogue"
        found.setdefault(message, f"{name}:{line}")
    return found


@pytest.mark.backend_independent
def test_every_text_of_the_templates_has_its_chinese_and_its_english():
    used = _template_messages()
    assert len(used) > 40, "the templates mark their texts for translation"
    for language in i18n.LANGUAGES:
        catalogue = i18n.catalogue(language)
        missing = [f"{where}: {message!r}" for message, where in used.items()
                   if catalogue.get(message) is None or not catalogue.get(message).string]
        assert not missing, f"{language}: no translation for\n" + "\n".join(missing)
        unused = [m.id for m in catalogue if m.id and m.id not in used]
        assert not unused, f"{language}: in the catalogue but no template uses: {unused}"
        for message in catalogue:
            if message.id and "%(" in message.id:  # the same placeholders in the translation
                placeholders = sorted(part.split(")")[0] for part in message.id.split("%(")[1:])
                assert sorted(part.split(")")[0] for part in message.string.split("%(")[1:]) == placeholders, message.id
    chinese = i18n.catalogue("zh")
    assert all(any("\u4e00" <= c <= "\u9fff" for c in m.string) for m in chinese if m.id and m.id not in ("Console",)), \
        "every Chinese text is in Chinese"


@pytest.mark.slow
def test_pages_are_chinese_by_default_and_english_when_chosen(served):
    url = served.console.url
    http, _ = served.console.session("op")
    page = http.get(url + "/exchanges", timeout=30).text
    assert '<html lang="zh-Hans">' in page and "<h1>交换记录</h1>" in page and ">总览</a>" in page and "Exchanges</h1>" not in page
    login = requests.get(url + "/login", timeout=30).text
    assert "<h1>登录</h1>" in login and "Sign in" not in login
    # The user's choice: a cookie, back to the same page.
    switched = http.get(url + "/language", params={"to": "en", "next": "/exchanges?status=rejected"}, allow_redirects=False, timeout=30)
    assert switched.status_code == 303 and switched.headers["location"] == "/exchanges?status=rejected"
    english = http.get(url + "/exchanges", timeout=30).text
    assert '<html lang="en">' in english and "<h1>Exchanges</h1>" in english and ">Overview</a>" in english and "交换记录" not in english
    assert http.get(url + "/language", params={"to": "xx"}, allow_redirects=False, timeout=30).status_code == 303
    assert "<h1>Exchanges</h1>" in http.get(url + "/exchanges", timeout=30).text  # an unknown language changes nothing
    assert http.get(url + "/language", params={"to": "zh", "next": "//evil.example"}, allow_redirects=False,
                    timeout=30).headers["location"] == "/"

    # gateway.toml's choice for everyone who has not chosen.
    toml = served.home / "gateway.toml"
    original = toml.read_text(encoding="utf-8")
    toml.write_text('console_language = "en"\n' + original, encoding="utf-8")
    english_home = Console(served.home, served.env)
    try:
        fresh = requests.Session()
        assert fresh.post(english_home.url + "/api/session", json={"name": "sec", "password": PASSWORDS["sec"]}, timeout=30).status_code == 200
        assert "<h1>Exchanges</h1>" in fresh.get(english_home.url + "/exchanges", timeout=30).text
        fresh.get(english_home.url + "/language", params={"to": "zh"}, timeout=30)
        assert "<h1>交换记录</h1>" in fresh.get(english_home.url + "/exchanges", timeout=30).text
    finally:
        english_home.stop()
        toml.write_text(original, encoding="utf-8")


# --- Every page, both ways -------------------------------------------------------------------
# The chrome of a page: the elements a page is built of, not the data it shows. Table cells,
# select options, code and elements marked `data` hold data (department names, Chinese
# reasons from the adapters, place names) and may stay Chinese in English; `#languages` is
# the switch itself (中文 · English), and outcome/problem lines are the Python-built
# messages, bilingual on their own.
CHROME_TAGS = {"title", "h1", "h2", "h3", "th", "button", "dt", "legend", "summary", "figcaption", "label", "footer", "nav", "p"}
DATA_TAGS = {"td", "option", "code", "pre", "textarea"}
DATA_IDS = {"languages", "outcome", "problem", "proof-error", "evaluated", "who"}
# (role, path, the id of an element the page must show) for every template of the console.
PAGES = [
    ("op", "/", "today"),
    ("op", "/exchanges", "exchanges"),
    ("op", "/exchanges/{police}", "issues"),
    ("op", "/deliveries", "deliveries"),
    ("op", "/receipts", "verify-form"),
    ("sec", "/receipts", "proof-form"),
    ("op", "/ledger", "checkpoints"),
    ("op", "/jobs", "adapters"),
    ("op", "/assist-checks", "assist-checks"),
    ("op", "/obligations", "obligations-parties"),
    ("op", "/reconciliation", "rules"),
    ("op", "/reports?kind=monthly&label=2026-10", "report-title"),
    ("op", "/contracts", "contracts"),
    ("sec", "/audit", "audit"),
    ("op", "/account/password", None),
    ("op", "/exchanges/987654321", "problem"),  # the error page
    (None, "/login", None),
]


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef" for c in text)


class _Chrome(HTMLParser):
    """The texts of a page's chrome, each with the tag it stands in."""

    VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "source", "col", "area", "base", "embed", "param", "track"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []  # (tag, inside data)
        self.texts: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(found["id"] or "")
        if tag in self.VOID:
            return
        inside = bool(self.stack and self.stack[-1][1]) or tag in DATA_TAGS or found.get("id") in DATA_IDS \
            or "data" in (found.get("class") or "").split()
        self.stack.append((tag, inside))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not data.strip() or not self.stack or self.stack[-1][1]:
            return
        chrome = next((tag for tag, _ in reversed(self.stack) if tag in CHROME_TAGS), None)
        if chrome:
            self.texts.append((chrome, data.strip()))


def _chrome(html: str) -> _Chrome:
    parser = _Chrome()
    parser.feed(html)
    return parser


def chrome_problems(language: str, path: str, html: str) -> list[str]:
    """What of a page's chrome is in the other language: any Chinese in English; in Chinese, a
    heading without Chinese, or a heading, header, button or label all in English."""
    page = _chrome(html)
    headings = [text for tag, text in page.texts if tag == "h1"]
    assert headings, (language, path)
    if language == "en":
        assert '<html lang="en">' in html, path
        return [f"en {path}: <{tag}> {text}" for tag, text in page.texts if _has_chinese(text)]
    assert '<html lang="zh-Hans">' in html, path
    problems = [] if any(_has_chinese(text) for text in headings) else [f"zh {path}: <h1> {headings}"]
    return problems + [f"zh {path}: <{tag}> {text}" for tag, text in page.texts
                       if tag in ("h1", "h2", "h3", "th", "button", "dt", "legend", "summary", "title") and text.isascii()
                       and any(c.isalpha() for c in text) and text not in ASCII_IN_CHINESE]


@pytest.mark.slow
def test_every_page_is_chinese_by_default_and_english_when_chosen(served):
    url = served.console.url
    sessions = {role: served.console.session(role)[0] for role in ("op", "sec")}
    sessions[None] = requests.Session()
    problems: list[str] = []  # every page's, so that one run names them all
    for language in ("zh", "en"):
        for http in sessions.values():
            http.cookies.set(i18n.LANGUAGE_COOKIE, language)
        for role, path, marker in PAGES:
            path = path.format(police=served.ids["police"])
            answer = sessions[role].get(url + path, timeout=30)
            assert answer.status_code == (404 if path.startswith("/exchanges/98") else 200), (path, answer.status_code)
            page = _chrome(answer.text)
            assert marker is None or marker in page.ids, (language, path, marker)
            problems += chrome_problems(language, path, answer.text)
    assert not problems, "chrome in the other language:\n" + "\n".join(problems)
