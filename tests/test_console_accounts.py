"""A console account's own life after signing in (issue 20, "Smaller"), against a real
`gateway serve` over real HTTP: a strong password (zxcvbn's common-password and pattern
lists), changing one's own password, the idle timeout, deep links kept through sign-in, an
API 401 that names the real sign-in route, outcome messages no link can forge, and no
redirect built from the request's Host header."""

from __future__ import annotations

import os
import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from console_helpers import Console, PASSWORDS, gateway_command, served  # noqa: F401 - served: the shared fixture

from gateway.web.accounts import AccountProblem, add_user

pytestmark = pytest.mark.slow


def _page_session(url: str, name: str, password: str, next_path: str = "/") -> requests.Session:
    """Sign in through the HTML form, as a browser does."""
    http = requests.Session()
    form = http.get(url + "/login", params={"next": next_path}, timeout=30)
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = http.post(url + "/login", data={"name": name, "password": password, "csrf_token": token, "next": next_path},
                       allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    http.last_redirect = answer.headers["location"]  # type: ignore[attr-defined]
    return http


def _csrf(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("weak", ["aaaaaaaaaa", "qwertyuiop", "password123", "1qaz2wsx3edc", "woaini1314"])
def test_weak_passwords_are_refused_in_chinese_first(served, weak):
    engine = served.engine()
    try:
        with pytest.raises(AccountProblem) as refused:
            add_user(engine, "weakling", "department", weak, "hospital", list(served.settings.departments))
        assert str(refused.value).startswith(("密码太容易被猜到", "密码至少"))
        assert served.query("SELECT count(*) FROM consoleuser WHERE name = 'weakling'") == [(0,)]
    finally:
        engine.dispose()


def test_the_command_refuses_a_common_password_and_takes_a_strong_one(served):
    command = [gateway_command(), "users", "add", "newclerk", "--role", "department", "--department", "hospital", "--password-stdin",
               "--home", str(served.home)]
    environment = {**os.environ, **served.env}
    weak = subprocess.run(command, input="1234567890\n", capture_output=True, text=True, env=environment, timeout=120)
    assert weak.returncode != 0 and "密码太容易被猜到" in weak.stdout + weak.stderr
    strong = subprocess.run(command, input="lychee-ferry-41-lantern\n", capture_output=True, text=True, env=environment, timeout=120)
    assert strong.returncode == 0, strong.stdout + strong.stderr
    assert served.query("SELECT role, department FROM consoleuser WHERE name = 'newclerk'") == [("department", "hospital")]


def test_an_account_changes_its_own_password_and_its_other_sessions_end(served):
    url = served.console.url
    first = _page_session(url, "locky", PASSWORDS["locky"])
    other, _ = served.console.session("locky")
    page = first.get(url + "/account/password", timeout=30)
    assert page.status_code == 200 and "修改密码" in page.text
    token = _csrf(page.text)

    wrong = first.post(url + "/account/password", data={"current": "not-it-at-all", "new": "x", "again": "x", "csrf_token": token}, timeout=30)
    assert wrong.status_code == 400 and "当前密码不对" in wrong.text
    weak = first.post(url + "/account/password",
                      data={"current": PASSWORDS["locky"], "new": "aaaaaaaaaaaa", "again": "aaaaaaaaaaaa", "csrf_token": token}, timeout=30)
    assert weak.status_code == 400 and "密码太容易被猜到" in weak.text
    differ = first.post(url + "/account/password",
                        data={"current": PASSWORDS["locky"], "new": "tangerine-orbit-77", "again": "tangerine-orbit-78", "csrf_token": token},
                        timeout=30)
    assert differ.status_code == 400 and "两次输入的新密码不一致" in differ.text
    forged = first.post(url + "/account/password",
                        data={"current": PASSWORDS["locky"], "new": "tangerine-orbit-77", "again": "tangerine-orbit-77", "csrf_token": "forged"},
                        timeout=30)
    assert forged.status_code == 403
    assert other.get(url + "/api/me", timeout=30).status_code == 200  # nothing changed yet

    done = first.post(url + "/account/password",
                      data={"current": PASSWORDS["locky"], "new": "tangerine-orbit-77", "again": "tangerine-orbit-77", "csrf_token": token},
                      timeout=30)
    assert done.status_code == 200 and "密码已修改" in done.text
    assert first.get(url + "/api/me", timeout=30).status_code == 200  # the session that changed it stays
    assert other.get(url + "/api/me", timeout=30).status_code == 401  # every other one ended
    old = requests.post(url + "/api/session", json={"name": "locky", "password": PASSWORDS["locky"]}, timeout=30)
    assert old.status_code == 401
    new = requests.Session()
    signed = new.post(url + "/api/session", json={"name": "locky", "password": "tangerine-orbit-77"}, timeout=30)
    assert signed.status_code == 200
    # The same through the API (X-CSRF-Token), back to the first password.
    back = new.post(url + "/api/session/password", json={"current": "tangerine-orbit-77", "new": PASSWORDS["locky"]},
                    headers={"X-CSRF-Token": signed.json()["csrf_token"]}, timeout=30)
    assert back.status_code == 204, back.text
    events = served.audit(action="password-changed")
    assert len(events) == 2 and all(e.user == "locky" and e.client == "127.0.0.1" and "changed its own password" in e.detail for e in events)
    assert {e.route for e in events} == {"POST /account/password", "POST /api/session/password"}


def test_an_idle_session_ends_and_sign_in_returns_to_the_page_asked_for(served):
    idle = Console(served.home, served.env, "--idle-minutes", "0.05")  # three seconds
    try:
        http = _page_session(idle.url, "op", PASSWORDS["op"], "/exchanges?department=hospital")
        assert http.last_redirect == "/exchanges?department=hospital"  # type: ignore[attr-defined]
        assert http.get(idle.url + "/api/me", timeout=30).status_code == 200
        time.sleep(1.5)
        assert http.get(idle.url + "/api/me", timeout=30).status_code == 200  # used: the idle clock starts again
        time.sleep(4)
        assert http.get(idle.url + "/api/me", timeout=30).status_code == 401
        # A page asked for without a session goes to the sign-in form, query and all, and back.
        asked = http.get(idle.url + "/deliveries?status=held", allow_redirects=False, timeout=30)
        assert asked.status_code == 303
        assert parse_qs(urlsplit(asked.headers["location"]).query)["next"] == ["/deliveries?status=held"]
        again = _page_session(idle.url, "op", PASSWORDS["op"], "/deliveries?status=held")
        assert again.last_redirect == "/deliveries?status=held"  # type: ignore[attr-defined]
    finally:
        idle.stop()
    # The module's console (30 minutes) keeps a session that pauses as long.
    http, _ = served.console.session("sec")
    time.sleep(4)
    assert http.get(served.console.url + "/api/me", timeout=30).status_code == 200


def test_the_api_says_how_to_sign_in(served):
    answer = requests.get(served.console.url + "/api/exchanges", timeout=30)
    assert answer.status_code == 401
    detail = answer.json()["detail"]
    assert detail.startswith("请先登录：POST /api/session") and "POST /login" not in detail


def test_an_outcome_message_is_shown_only_when_the_console_made_it(served):
    url = served.console.url
    http = _page_session(url, "sec", PASSWORDS["sec"])
    forged = http.get(url + "/reconciliation", params={"done": "全部核对通过 all checks passed", "ok": "true"}, timeout=30)
    assert forged.status_code == 200 and "全部核对通过" not in forged.text and 'id="evaluated"' not in forged.text
    forged_sig = http.get(url + "/reconciliation", params={"done": "all fine", "ok": "true", "sig": "0" * 32}, timeout=30)
    assert "all fine" not in forged_sig.text
    platform = http.get(url + "/assist-checks", params={"done": "协查请求已发送", "ok": "true"}, timeout=30)
    assert 'id="outcome"' not in platform.text
    # The real one: evaluated from the page, the redirect carries a signature good for this session only.
    page = http.get(url + "/reconciliation", timeout=30)
    evaluated = http.post(url + "/reconciliation/evaluate", data={"csrf_token": _csrf(page.text)}, allow_redirects=False, timeout=30)
    assert evaluated.status_code == 303
    location = evaluated.headers["location"]
    assert location.startswith("/reconciliation?") and "sig=" in location
    shown = http.get(url + location, timeout=30)
    assert 'id="evaluated"' in shown.text
    stranger = _page_session(url, "op", PASSWORDS["op"])
    assert 'id="evaluated"' not in stranger.get(url + location, timeout=30).text  # another session: not shown


def test_no_redirect_follows_the_host_header(served):
    url = served.console.url
    http = _page_session(url, "op", PASSWORDS["op"])
    for path in ("/exchanges/", "/deliveries/", "/", "/login", "/audit/"):
        for client in (http, requests.Session()):
            answer = client.get(url + path, headers={"Host": "evil.example"}, allow_redirects=False, timeout=30)
            location = answer.headers.get("location", "")
            assert "evil.example" not in location and not location.startswith(("http:", "https:", "//")), (path, location)
    assert http.get(url + "/exchanges/", allow_redirects=False, timeout=30).status_code == 404
