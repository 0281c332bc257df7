"""The audit log a security officer answers from (issue 20): sign-ins and their refusals (the
reason in the log, never in the answer), back-offs, sign-outs, unlocks and password changes,
refused (403) requests, and views naming their subjects (masked), each with the account, its
role and the client address; an overview load writes nothing. The officer filters by user,
action, department and date, pages through all of it (/audit, /api/audit, `gateway audit
events`) and exports CSV (UTF-8 with BOM, masked). And the console's entries never wait for an
exchange: while a real sqlite3 connection holds BEGIN IMMEDIATE on the main database (on
PostgreSQL, an open transaction that has written an exchange and a routing event), the
overview and an audited register view answer promptly, and the view's entry is there.

A real `gateway serve` (tests/console_helpers.py) on a real home, on SQLite and PostgreSQL;
every answer goes to the privacy scan."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import sqlite3
import subprocess
import threading
import time

import pytest
import requests
from console_helpers import PASSWORDS, Served, from_address, gateway_command, scan_text
from conftest import BACKEND

from gateway import clock

pytestmark = pytest.mark.slow

TOWN, VILLAGE = "大江镇", "公益村"  # of the example divisions.csv
PROMPT = 5.0  # seconds: generous; a page that waited for the lock would wait until it is released


@pytest.fixture(scope="module")
def served(template_home, request):
    """The console's home, with the example divisions (the register page needs them)."""
    from gateway.register.divisions import EXAMPLE

    postgres_server = request.getfixturevalue("postgres_server") if BACKEND == "postgresql" else None
    home = Served(template_home, postgres_server)
    try:
        (home.home / "divisions.csv").write_text(EXAMPLE, encoding="utf-8")
        yield home
    finally:
        home.close()


def officer(served: Served) -> requests.Session:
    """The security officer's session, signed in once (the sign-in throttle counts attempts)."""
    if not hasattr(served, "officer"):
        served.officer, _ = served.console.session("sec")  # type: ignore[attr-defined]
    return served.officer  # type: ignore[attr-defined]


def entries(served: Served, **filters: str) -> list[dict]:
    """Every entry the officer's API gives for these filters, paged through (newest first)."""
    http, rows, offset = officer(served), [], 0
    while True:
        answer = http.get(served.console.url + "/api/audit/page", params={**filters, "limit": 50, "offset": offset}, timeout=30)
        assert answer.status_code == 200, answer.text
        scan_text("api audit page", answer.text)
        body = answer.json()
        rows += body["rows"]
        offset += 50
        if offset >= body["total"]:
            assert len(rows) == body["total"]
            return rows


def test_sign_ins_refusals_backoffs_and_403s_are_audited_with_the_client_address(served):
    url = served.console.url
    stranger = from_address("127.0.0.7")
    answers = [stranger.post(url + "/api/session", json={"name": "clerk", "password": "not-the-password"}, timeout=30) for _ in range(5)]
    unknown = stranger.post(url + "/api/session", json={"name": "nobody-here", "password": "whatever-it-is"}, timeout=30)
    # The answers say nothing of why; the log does.
    assert {a.status_code for a in answers + [unknown]} == {401} and len({a.text for a in answers + [unknown]}) == 1
    assert "wrong-password" not in unknown.text and "unknown-name" not in unknown.text
    refused = entries(served, action="sign-in-refused")
    from_stranger = [e for e in refused if e["client"] == "127.0.0.7"]
    assert [e["detail"] for e in from_stranger if e["user"] == "clerk"] == ["refused: wrong-password"] * 5
    assert [e["detail"] for e in from_stranger if e["user"] == "nobody-here"] == ["refused: unknown-name"]
    assert all(e["source"] == "console" and e["route"] == "POST /api/session" for e in from_stranger)
    [backoff] = [e for e in entries(served, action="backoff") if e["client"] == "127.0.0.7"]
    assert backoff["user"] == "clerk" and "back-off of 30 s" in backoff["detail"]

    # A sign-in: who, which role, from where. A refused request (403): which route, which account.
    http = from_address("127.0.0.8")
    assert http.post(url + "/api/session", json={"name": "clerk", "password": PASSWORDS["clerk"]}, timeout=30).status_code == 200
    [signed_in] = [e for e in entries(served, action="sign-in", user="clerk") if e["client"] == "127.0.0.8"]
    assert signed_in["role"] == "department" and signed_in["department"] == "hospital"
    assert http.get(url + "/api/audit", timeout=10).status_code == 403
    assert http.get(url + "/jobs", timeout=10).status_code == 403
    forbidden = [e for e in entries(served, action="forbidden", user="clerk") if e["client"] == "127.0.0.8"]
    assert sorted(e["route"] for e in forbidden) == ["GET /api/audit", "GET /jobs"]
    assert all(e["role"] == "department" and e["detail"].startswith("refused (403)") for e in forbidden)

    # Signing out (the page's form, with the session's token).
    op, csrf = served.console.session("op")
    assert op.post(url + "/logout", data={"csrf_token": csrf}, timeout=10, allow_redirects=False).status_code == 303
    assert [e["user"] for e in entries(served, action="sign-out")] == ["op"]

    # An unlock and a new password, from the command line: this machine's user, the account in the detail.
    env = {**os.environ, **served.env}
    for command, stdin in ((["users", "unlock", "clerk"], None), (["users", "reset-password", "gone", "--password-stdin"], "another-pass-12\n")):
        done = subprocess.run([gateway_command(), *command, "--home", str(served.home)], input=stdin, capture_output=True, text=True,
                              timeout=60, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    [unlock] = entries(served, action="unlock")
    assert unlock["role"] == "cli" and "lifted the sign-in back-off of clerk for 1 client address(es)" in unlock["detail"]
    [reset] = entries(served, action="password-reset")
    assert reset["route"] == "gateway users reset-password gone" and "another-pass" not in str(reset)


def test_an_overview_writes_nothing_and_a_view_names_its_subjects(served):
    http, _ = served.console.session("op")
    url = served.console.url
    before = len(entries(served))
    for _ in range(3):
        assert http.get(url + "/", timeout=30).status_code == 200
        assert http.get(url + "/api/overview", timeout=30).status_code == 200
    assert len(entries(served)) == before
    assert http.get(url + "/assist-checks", timeout=30).status_code == 200
    [view] = [e for e in entries(served, action="console-view", user="op") if e["route"] == "GET /assist-checks"
              and "assist-check subject(s)" in e["detail"]]
    assert view["department"] == "national-platform" and view["role"] == "operator" and view["client"] == "127.0.0.1"
    subjects = view["subjects"].split(", ")
    assert len(subjects) == 2 and all(re.search(r"\d{6}\*{11}[\dX]", s) for s in subjects), subjects
    assert "viewed 2 assist-check subject(s)" in view["detail"]


def test_the_officer_filters_pages_and_exports_the_log(served, tmp_path):
    url = served.console.url
    for _ in range(3):  # a few entries of each source at least
        from_address("127.0.0.9").post(url + "/api/session", json={"name": "nobody", "password": "not-it-at-all"}, timeout=30)
    clerk = from_address("127.0.0.10")
    assert clerk.post(url + "/api/session", json={"name": "clerk", "password": PASSWORDS["clerk"]}, timeout=30).status_code == 200
    assert clerk.get(url + f"/api/exchanges/{served.ids['hospital']}", timeout=30).status_code == 200  # a view: hospital's
    http = officer(served)
    everything = entries(served)
    assert {e["source"] for e in everything} == {"routing", "console"}  # one list of both logs
    assert [e["at"] for e in everything] == sorted((e["at"] for e in everything), reverse=True)
    assert len({(e["source"], e["id"]) for e in everything}) == len(everything)  # paging skipped or repeated nothing

    # The list of before, with the total in a header; limit and offset page it.
    first = http.get(url + "/api/audit", params={"limit": 2}, timeout=30)
    assert int(first.headers["X-Total-Count"]) == len(everything) and len(first.json()) == 2
    second = http.get(url + "/api/audit", params={"limit": 2, "offset": 2}, timeout=30).json()
    assert [(e["source"], e["id"]) for e in first.json() + second] == [(e["source"], e["id"]) for e in everything[:4]]

    # Filters: department, action, user, dates (China time).
    hospital = entries(served, department="hospital")
    assert hospital and all(e["department"] == "hospital" for e in hospital)
    assert {"sign-in", "console-view"} <= {e["action"] for e in hospital}
    nobody = entries(served, user="nobody", action="sign-in-refused")
    assert len(nobody) == 3 and {e["client"] for e in nobody} == {"127.0.0.9"}
    today = clock.in_china(dt.datetime.now(dt.UTC)).date()
    assert len(entries(served, date_from=today.isoformat(), date_to=today.isoformat())) == len(everything)
    assert entries(served, date_from=(today + dt.timedelta(days=1)).isoformat()) == []
    assert entries(served, date_to=(today - dt.timedelta(days=1)).isoformat()) == []

    # The page: filters kept in next/previous links, a count, the export with the same filters.
    page = http.get(url + "/audit", params={"action": "sign-in-refused", "limit": 2}, timeout=30)
    assert page.status_code == 200
    scan_text("audit page", page.text)
    refused = len(entries(served, action="sign-in-refused"))
    assert f"共 {refused} 条" in page.text and 'id="audit-previous"' not in page.text
    following = re.search(r'id="audit-next" rel="next" href="/audit\?([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert "action=sign-in-refused" in following and "offset=2" in following
    later = http.get(url + "/audit?" + following, timeout=30).text
    assert 'id="audit-previous"' in later and later.count("<td>sign-in-refused</td>") == min(2, refused - 2)
    assert 'href="/audit.csv?action=sign-in-refused"' in page.text

    # CSV: UTF-8 with BOM, Chinese header, every entry the filters let through, masked.
    exported = http.get(url + "/audit.csv", params={"department": "hospital"}, timeout=30)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith("\ufeff".encode("utf-8"))
    text = exported.content.decode("utf-8-sig")
    scan_text("audit csv", text)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["时间 at (UTC+8)", "来源 source", "编号 id", "操作 action"] and len(rows) - 1 == len(hospital)
    [export] = [e for e in entries(served, action="audit-export") if e["route"] == "GET /audit.csv"]
    assert export["user"] == "sec" and "department=hospital" in export["detail"]

    # `gateway audit events`: the same list and filters on the command line, and its CSV.
    shown = served.run("audit", "events", "--user", "nobody", "--action", "sign-in-refused", "--limit", "2",
                       "--from", today.isoformat(), "--to", today.isoformat())
    assert "3 条 entries, 1-2" in shown.stdout and "127.0.0.9" in shown.stdout and "--offset 2" in shown.stdout
    target = tmp_path / "audit.csv"
    served.run("audit", "events", "--department", "hospital", "--csv", str(target))
    assert target.read_bytes().startswith(b"\xef\xbb\xbf") and len(list(csv.reader(io.StringIO(target.read_text("utf-8-sig"))))) - 1 == len(hospital)


def _hold_the_write_lock(served: Served, held: threading.Event, release: threading.Event) -> None:
    """What a long exchange does to the main database: a real write transaction left open."""
    if BACKEND == "sqlite":
        path = served.settings.db_url.split(":///", 1)[1]
        connection = sqlite3.connect(path, isolation_level=None, timeout=1)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO auditevent (at, action, department, detail) VALUES ('2026-12-04 10:00:00.000000', 'held', 'police', 'an ingest in progress')")
            held.set()
            release.wait(60)
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    import psycopg

    with psycopg.connect(served.database) as connection:
        connection.execute("INSERT INTO auditevent (at, action, department, detail) VALUES (now(), 'held', 'police', 'an ingest in progress')")
        connection.execute("SELECT id FROM exchange FOR UPDATE")  # and the exchanges it is updating
        held.set()
        release.wait(60)
        connection.rollback()


def test_pages_answer_while_an_exchange_holds_the_write_lock(served):
    http, _ = served.console.session("op")  # signed in before: a sign-in itself writes the main database
    url = served.console.url
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_the_write_lock, args=(served, held, release), daemon=True)
    holder.start()
    try:
        assert held.wait(30), "the write transaction did not start"
        started = time.monotonic()
        overview = http.get(url + "/", timeout=30)
        overview_took = time.monotonic() - started
        started = time.monotonic()
        register = http.get(url + "/register", params={"township": TOWN, "village": VILLAGE}, timeout=30)
        register_took = time.monotonic() - started
        assert overview.status_code == 200 and register.status_code == 200, register.text[:500]
        assert overview_took < PROMPT and register_took < PROMPT, (overview_took, register_took)
        scan_text("register page under a held lock", register.text)
        # Its entry is there while the lock is still held: the console's log is not the main database's lock.
        views = [e for e in served.audit(action="register.women", user="op") if e.route == "GET /register"]
        assert views and VILLAGE in views[-1].detail and views[-1].client == "127.0.0.1"
        assert holder.is_alive()
    finally:
        release.set()
        holder.join(60)
