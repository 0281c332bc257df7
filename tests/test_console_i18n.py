"""The console's message catalogue (issue 20, "Chinese first"): every text a template marks
for translation has its Chinese and its English in gateway/web/locale/; pages are in
Chinese by default, in English when gateway.toml or the user chooses it (a real `gateway
serve` over real HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from babel.messages.extract import extract_from_dir
from console_helpers import Console, PASSWORDS, served  # noqa: F401 - served: the shared fixture

from gateway.web import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"


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
