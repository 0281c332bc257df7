"""The console's languages (控制台语言): a gettext message catalogue, Simplified Chinese by
default, English when `gateway.toml` (`console_language = "en"`) or the user (the 中文 /
English switch at the top of every page, a cookie) chooses it.

The catalogues are `locale/zh/LC_MESSAGES/console.po` and `locale/en/LC_MESSAGES/console.po`,
read with Babel when the console starts (no compile step: Babel writes the `.mo` in memory).
A template marks a text with `{{ _("Exchanges") }}`; the msgid is the English text, and each
catalogue must give it a non-empty translation — tests/test_console_i18n.py fails when one
of the texts the templates use lacks its Chinese or its English. Extract new texts with
`pybabel extract -F gateway/web/babel.cfg -o /tmp/console.pot gateway/web/templates`.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh", "en")
LANGUAGE_COOKIE = "gateway_console_lang"
DOMAIN = "console"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("console_language", default="zh")


def catalogue(language: str) -> Catalog:
    with open(LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po", "rb") as po:
        return read_po(po, locale="zh_Hans_CN" if language == "zh" else "en")


def _translations(language: str) -> Translations:
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(language))
    compiled.seek(0)
    return Translations(fp=compiled, domain=DOMAIN)


class Catalogues:
    """Both languages' translations, read once per console process."""

    def __init__(self) -> None:
        self._by_language = {language: _translations(language) for language in LANGUAGES}

    def gettext(self, message: str) -> str:
        return self._by_language[_current.get()].gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._by_language[_current.get()].ngettext(singular, plural, n)


def choose(cookie: str | None, default: str) -> str:
    """The user's choice when it is one of LANGUAGES, else the home's default."""
    return cookie if cookie in LANGUAGES else default if default in LANGUAGES else "zh"


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """Render in `language` within this block (a page's request)."""
    token = _current.set(language)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> str:
    return _current.get()
