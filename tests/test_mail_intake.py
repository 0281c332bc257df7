"""Issue 22: the population office's mailbox as an intake channel, against the real Postfix
and Dovecot of tests/mail_servers.py. A clerk sends with smtplib (a plain mail client) to
the submission port; one mail pass of the gateway reads the office's box over IMAPS with
the throwaway CA pinned, processes each attachment as a drop of the sender's department,
and moves the message on."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import query, run_gateway, specimen
from gpg_helpers import DepartmentKeyring
from mail_servers import HOSPITAL, OFFICE, STRANGER, MailServers, password_of

from gateway.config import CONFIG_FILE, load_settings
from gateway.errors import ConfigError
from gateway.exchange.lifecycle import Gateway
from gateway.mail.intake import mail_pass
from gateway.mail.reply import SmtpReplier
from gateway.receipts.check import verify_receipt
from gateway.receipts.keys import DepartmentKeys

SPECIMEN = "hospital_births_202610.csv"
PASSWORD_VARIABLE = "GWT_OFFICE_MAIL_PASSWORD"


def mail_toml(servers: MailServers, **extra: str) -> str:
    lines = [
        "",
        "[mail]",
        'imap_host = "127.0.0.1"',
        f"imap_port = {servers.imaps_port}",
        'security = "imaps"',
        f'ca_file = "{servers.ca_file}"',
        f'user = "{OFFICE}"',
        f'password_env = "{PASSWORD_VARIABLE}"',
        'folder = "INBOX"',
        'processed_folder = "Processed"',
        'rejected_folder = "Rejected"',
        'held_folder = "Held"',
        'smtp_host = "127.0.0.1"',
        f"smtp_port = {servers.submission_port}",
        f'from_address = "{OFFICE}"',
        *(f"{key} = {value}" for key, value in extra.items()),
        "[mail.senders]",
        f'"{HOSPITAL}" = "hospital"',
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def office(home: Path, mail_servers: MailServers, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    mail_servers.empty()
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    monkeypatch.setenv(PASSWORD_VARIABLE, password_of(OFFICE))
    with open(home / CONFIG_FILE, "a", encoding="utf-8") as config:
        config.write(mail_toml(mail_servers))
    gateway = Gateway(load_settings(home))
    try:
        yield gateway
    finally:
        gateway.close()


def births_mail(message_id: str, sender: str = HOSPITAL, name: str = SPECIMEN, data: bytes | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = OFFICE
    message["Subject"] = "10月出生信息 births, October"
    message["Message-ID"] = message_id
    message.set_content("您好，附件是本月出生医学证明信息。\nHello, this month's births are attached.\n")
    message.add_attachment(data if data is not None else specimen(SPECIMEN), maintype="text", subtype="csv", filename=name)
    return message


def exchanges(gateway: Gateway) -> list[tuple]:
    return query(gateway.settings, "SELECT id, department, status, duplicate_of FROM exchange ORDER BY id")


def test_the_hospital_specimen_by_mail_is_one_exchange_with_a_signed_receipt(office: Gateway, mail_servers: MailServers, home: Path) -> None:
    mail_servers.send(births_mail("<births-2026-10@hospital.county.test>"), HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)

    done = mail_pass(office)

    assert done is not None and [m.status for m in done.messages] == ["processed"]
    [(exchange_id, department, status, _)] = exchanges(office)
    assert (department, status) == ("hospital", "processed")
    outbox = office.settings.mailbox_root / "hospital" / "outbox"
    receipt = outbox / f"{SPECIMEN}.receipt.json"
    verdict = verify_receipt(receipt, home / "keys", office.engine)
    assert verdict.genuine, [(c.name, c.detail) for c in verdict.checks if not c.ok]
    document = json.loads(receipt.read_bytes())
    assert document["file_sha256"] == hashlib.sha256(specimen(SPECIMEN)).hexdigest()
    assert document["counts"]["accepted"] == 3 and document["department"] == "hospital"
    # The bytes are kept like a drop's, under the exchange's number.
    kept = office.settings.mailbox_root / "hospital" / "processed" / f"mail-{exchange_id}-{SPECIMEN}"
    assert kept.read_bytes() == specimen(SPECIMEN)
    # The message left the inbox for the processed folder, after the commit.
    assert mail_servers.folder_count(OFFICE, "INBOX") == 0
    assert mail_servers.folder_count(OFFICE, "Processed") == 1
    assert query(office.settings, "SELECT status, department, sender FROM mailmessage") == [("processed", "hospital", HOSPITAL)]
    assert query(office.settings, "SELECT position, status, exchange_id FROM mailattachment") == [(1, "processed", exchange_id)]
    # A second pass finds nothing.
    assert mail_pass(office).messages == []  # type: ignore[union-attr]
    assert len(exchanges(office)) == 1


def test_the_same_message_delivered_twice_is_one_exchange(office: Gateway, mail_servers: MailServers) -> None:
    message = births_mail("<twice@hospital.county.test>")
    mail_servers.send(message, HOSPITAL)
    mail_servers.send(message, HOSPITAL)  # the clerk's client sent it again: the same Message-ID
    [first, _] = mail_servers.wait_for(OFFICE, 2)

    done = mail_pass(office)

    assert done is not None and [m.repeated for m in done.messages] == [False, True]
    assert [row[2] for row in exchanges(office)] == ["processed"]
    assert mail_servers.folder_count(OFFICE, "Processed") == 2
    # Delivered once more by the server after the pass: still nothing new.
    mail_servers.deliver_again(OFFICE, first.as_bytes())
    again = mail_pass(office)
    assert again is not None and [m.repeated for m in again.messages] == [True]
    assert len(exchanges(office)) == 1
    assert query(office.settings, "SELECT count(*) FROM mailmessage") == [(1,)]
    assert query(office.settings, "SELECT count(*) FROM mailattachment") == [(1,)]


def test_mail_from_an_unknown_sender_is_held_never_processed(office: Gateway, mail_servers: MailServers) -> None:
    mail_servers.send(births_mail("<stranger@county.test>", sender=STRANGER), STRANGER)
    mail_servers.wait_for(OFFICE, 1)

    done = mail_pass(office)

    assert done is not None and [m.status for m in done.messages] == ["held"]
    assert exchanges(office) == []
    assert not list((office.settings.mailbox_root / "hospital" / "outbox").glob("*.receipt.json"))
    assert mail_servers.folder_count(OFFICE, "Held") == 1
    assert mail_servers.folder_count(OFFICE, "INBOX") == 0
    assert query(office.settings, "SELECT status, department FROM mailmessage") == [("held", None)]


def test_a_new_message_with_the_same_bytes_is_a_duplicate_exchange(office: Gateway, mail_servers: MailServers) -> None:
    mail_servers.send(births_mail("<first@hospital.county.test>"), HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)
    mail_pass(office)
    mail_servers.send(births_mail("<resent@hospital.county.test>", name="births-again.csv"), HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)

    done = mail_pass(office)

    assert done is not None and [m.status for m in done.messages] == ["processed"]
    [(first, _, processed, _), (second, _, duplicate, of)] = exchanges(office)
    assert (processed, duplicate, of) == ("processed", "duplicate", first)
    outbox = office.settings.mailbox_root / "hospital" / "outbox"
    assert (outbox / "births-again.csv.receipt.json").exists()  # its own receipt
    assert json.loads((outbox / "births-again.csv.receipt.json").read_bytes())["status"] == "duplicate"


def test_a_file_no_adapter_reads_is_refused_and_the_message_rejected(office: Gateway, mail_servers: MailServers) -> None:
    mail_servers.send(births_mail("<junk@hospital.county.test>", name="notes.csv", data=b"hello,world\n"), HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)

    done = mail_pass(office)

    assert done is not None and [m.status for m in done.messages] == ["rejected"]
    assert [row[2] for row in exchanges(office)] == ["rejected"]
    assert mail_servers.folder_count(OFFICE, "Rejected") == 1


@pytest.mark.backend_independent
def test_mail_settings_are_checked(home: Path, mail_servers: MailServers) -> None:
    config = home / CONFIG_FILE
    original = config.read_text(encoding="utf-8")
    config.write_text(original + mail_toml(mail_servers).replace(f'ca_file = "{mail_servers.ca_file}"\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError, match="ca_file 或 cert_sha256"):
        load_settings(home)
    config.write_text(original + mail_toml(mail_servers).replace('"hospital"', '"nowhere"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="nowhere"):
        load_settings(home)
    config.write_text(original + mail_toml(mail_servers) .replace("[mail.senders]", 'password = "x"\n[mail.senders]'), encoding="utf-8")
    with pytest.raises(ConfigError, match="never store"):
        load_settings(home)


# -- replies (phase 3) ---------------------------------------------------------------------


def replies(servers: MailServers, count: int = 1, timeout: float = 30) -> list[EmailMessage]:
    return servers.wait_for(HOSPITAL, count, timeout=timeout)


def gpg_verifies(home: Path, folder: Path, name: str) -> subprocess.CompletedProcess:
    """Plain gpg, in a keyring of its own holding only the gateway's published key."""
    keyring = folder / "clerk-gnupg"
    keyring.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(keyring), "PATH": "/usr/bin:/bin"}
    try:
        for key in (home / "keys").glob("*.asc"):
            subprocess.run(["gpg", "--batch", "--import", str(key)], env=env, check=True, capture_output=True)
        return subprocess.run(["gpg", "--batch", "--status-fd", "1", "--verify", str(folder / f"{name}.asc"), str(folder / name)],
                              env=env, capture_output=True, text=True)
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)


def test_the_sender_gets_one_reply_with_the_signed_receipt(office: Gateway, mail_servers: MailServers, home: Path, tmp_path: Path) -> None:
    original = births_mail("<reply-me@hospital.county.test>")
    original["Reply-To"] = STRANGER  # ignored: the receipt goes to the registered address only
    mail_servers.send(original, HOSPITAL)
    [delivered] = mail_servers.wait_for(OFFICE, 1)
    replier = SmtpReplier.configured(office.settings)

    mail_pass(office, replier)

    [reply] = replies(mail_servers)
    assert reply["Subject"] == "Re: 10月出生信息 births, October"
    assert reply["In-Reply-To"] == "<reply-me@hospital.county.test>"
    assert "<reply-me@hospital.county.test>" in reply["References"]
    assert reply["From"] == OFFICE and reply["To"] == HOSPITAL
    assert mail_servers.folder_count(STRANGER, "INBOX") == 0
    text = reply.get_body(("plain",)).get_content()
    assert text.index("已处理") < text.index("processed")  # Chinese first, then English
    assert f"附件 1「{SPECIMEN}」:已处理" in text
    attached = {part.get_filename(): part.get_payload(decode=True) for part in reply.iter_attachments()}
    assert set(attached) == {f"{SPECIMEN}.receipt.json", f"{SPECIMEN}.receipt.json.asc", f"{SPECIMEN}.errors.csv"}
    for name, data in attached.items():
        (tmp_path / name).write_bytes(data)
    outbox = office.settings.mailbox_root / "hospital" / "outbox"
    assert attached[f"{SPECIMEN}.receipt.json"] == (outbox / f"{SPECIMEN}.receipt.json").read_bytes()
    verified = gpg_verifies(home, tmp_path, f"{SPECIMEN}.receipt.json")
    assert verified.returncode == 0, verified.stderr
    assert "[GNUPG:] GOODSIG" in verified.stdout

    # The server delivers the same message again: nothing new, and no second reply.
    mail_servers.deliver_again(OFFICE, delivered.as_bytes())
    again = mail_pass(office, replier)
    assert again is not None and [m.repeated for m in again.messages] == [True]
    assert len(replies(mail_servers, 2, timeout=5)) == 1
    assert len(exchanges(office)) == 1


def test_a_reply_the_smtp_server_refused_is_sent_on_a_later_pass(office: Gateway, mail_servers: MailServers) -> None:
    mail_servers.send(births_mail("<later@hospital.county.test>"), HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens there once the probe is closed
    box = office.settings.mail
    assert box is not None
    away = SmtpReplier(box.model_copy(update={"smtp_port": closed}), office.settings.home)

    mail_pass(office, away)

    assert mail_servers.folder_count(OFFICE, "Processed") == 1  # the message is safe in its folder
    assert query(office.settings, "SELECT replied_at FROM mailmessage") == [(None,)]
    assert replies(mail_servers, 1, timeout=3) == []
    mail_pass(office, SmtpReplier.configured(office.settings))
    [reply] = replies(mail_servers)
    assert reply["In-Reply-To"] == "<later@hospital.county.test>"
    assert query(office.settings, "SELECT count(*) FROM mailmessage WHERE replied_at IS NOT NULL") == [(1,)]


def test_a_message_without_attachments_is_rejected_with_a_reply_saying_so(office: Gateway, mail_servers: MailServers) -> None:
    message = births_mail("<empty@hospital.county.test>")
    message.clear_content()
    message.set_content("忘了附件 forgot the file")
    mail_servers.send(message, HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)

    mail_pass(office, SmtpReplier.configured(office.settings))

    assert mail_servers.folder_count(OFFICE, "Rejected") == 1
    [reply] = replies(mail_servers)
    text = reply.get_body(("plain",)).get_content()
    assert "邮件没有附件" in text and "the message has no attachment" in text
    assert text.index("邮件没有附件") < text.index("the message has no attachment")


# -- signing departments, held mail and the operator (phase 4) ------------------------------


@pytest.fixture(scope="module")
def hospital_key() -> Iterator[tuple[DepartmentKeyring, str]]:
    ring = DepartmentKeyring()
    yield ring, ring.new_key("Hospital Exchange")
    ring.close()


def signing(office: Gateway, hospital_key: tuple[DepartmentKeyring, str]) -> None:
    ring, fingerprint = hospital_key
    DepartmentKeys(office.settings.keys_dir).import_key(ring.export(fingerprint), "hospital")


def test_a_signing_department_s_mail_needs_name_asc_beside_name(office: Gateway, mail_servers: MailServers, hospital_key) -> None:
    signing(office, hospital_key)
    ring, fingerprint = hospital_key
    mail_servers.send(births_mail("<unsigned@hospital.county.test>"), HOSPITAL)
    signed = births_mail("<signed@hospital.county.test>", name="births-signed.csv")
    signed.add_attachment(ring.sign(specimen(SPECIMEN), fingerprint), maintype="application", subtype="pgp-signature",
                          filename="births-signed.csv.asc")
    mail_servers.send(signed, HOSPITAL)
    mail_servers.wait_for(OFFICE, 2)

    done = mail_pass(office, SmtpReplier.configured(office.settings))

    assert done is not None and sorted(m.status for m in done.messages) == ["held", "processed"]
    [(_, _, status, _)] = exchanges(office)  # the signature itself is no exchange
    assert status == "processed"
    assert query(office.settings, "SELECT name FROM mailattachment") == [("births-signed.csv",)]
    assert mail_servers.folder_count(OFFICE, "Held") == 1
    [reply] = replies(mail_servers)  # the held message gets none
    assert reply["In-Reply-To"] == "<signed@hospital.county.test>"


def test_a_forged_from_address_of_a_signing_department_is_held(office: Gateway, mail_servers: MailServers, hospital_key) -> None:
    signing(office, hospital_key)
    # The stranger logs in as themself and writes the hospital's address in From.
    mail_servers.send(births_mail("<forged@county.test>", sender=HOSPITAL), STRANGER)
    mail_servers.wait_for(OFFICE, 1)

    done = mail_pass(office, SmtpReplier.configured(office.settings))

    assert done is not None and [m.status for m in done.messages] == ["held"]
    assert exchanges(office) == []
    assert replies(mail_servers, 1, timeout=3) == []


def test_the_operator_lists_releases_and_refuses_held_mail(office: Gateway, mail_servers: MailServers, home: Path) -> None:
    env = {PASSWORD_VARIABLE: password_of(OFFICE)}
    mail_servers.send(births_mail("<release-me@county.test>", sender=STRANGER), STRANGER)
    mail_servers.send(births_mail("<refuse-me@county.test>", sender=STRANGER, name="other.csv"), STRANGER)
    mail_servers.wait_for(OFFICE, 2)
    mail_pass(office)

    listed = run_gateway(home, "mail", "held", env=env).stdout
    assert "s…@county.test" in listed and STRANGER not in listed
    [(release_id,), (refuse_id,)] = query(office.settings, "SELECT id FROM mailmessage ORDER BY message_id DESC")
    refused = run_gateway(home, "mail", "release", str(release_id), env=env, check=False)
    assert refused.returncode != 0 and "--department" in refused.stdout + refused.stderr
    run_gateway(home, "mail", "release", str(release_id), "--department", "hospital", env=env)
    run_gateway(home, "mail", "refuse", str(refuse_id), "--reason", "not a department", env=env)
    assert mail_servers.folder_count(OFFICE, "INBOX") == 1 and mail_servers.folder_count(OFFICE, "Rejected") == 1

    result = run_gateway(home, "run", "--once", env=env)  # the next pass, as the operator's gateway runs it

    assert "1 message(s): 1 processed" in result.stdout
    assert [(d, s) for _, d, s, _ in exchanges(office)] == [("hospital", "processed")]
    assert query(office.settings, "SELECT status FROM mailmessage ORDER BY id") == [("processed",), ("refused",)]
    assert mail_servers.folder_count(OFFICE, "Processed") == 1
    assert "No held messages" in run_gateway(home, "mail", "held", env=env).stdout


# -- a crash between the commit and the IMAP move (issue 22, "Done when") -------------------

KILL_IN_MOVE = "import gateway.mail.intake as intake\nintake.move = lambda *args: os.kill(os.getpid(), signal.SIGKILL)\n"
KILL_BEFORE_THE_ROW = (
    "from gateway.intake.transports.local import LocalMailbox\n"
    "put = LocalMailbox.put\n"
    "def dying_put(self, department, folder, name, source):\n"
    "    if name.startswith('mail-'):\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "    return put(self, department, folder, name, source)\n"
    "LocalMailbox.put = dying_put\n"
)


@pytest.mark.parametrize("kill", [KILL_IN_MOVE, KILL_BEFORE_THE_ROW], ids=["in-the-move", "before-the-attachment-row"])
def test_sigkill_after_the_commit_then_restart_repeats_nothing(office: Gateway, mail_servers: MailServers, home: Path, kill: str) -> None:
    import os
    import signal

    from conftest import REPO

    mail_servers.send(births_mail("<crash@hospital.county.test>"), HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)
    env = {**os.environ, PASSWORD_VARIABLE: password_of(OFFICE), "GATEWAY_SETTLE_SECONDS": "0", "COLUMNS": "200"}
    killer = (
        "import os, signal, sys\n" + kill +
        "from gateway.cli.app import main\n"
        f"sys.argv = ['gateway', 'run', '--once', '--home', {str(home)!r}]\n"
        "main()\n"
    )
    killed = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", killer], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [(exchange_id, _, status, _)] = exchanges(office)
    assert status == "processed"
    assert mail_servers.folder_count(OFFICE, "INBOX") == 1  # not lost
    assert query(office.settings, "SELECT count(*) FROM receipt") == [(1,)]

    run_gateway(home, "run", "--once", env={PASSWORD_VARIABLE: password_of(OFFICE), "GATEWAY_SETTLE_SECONDS": "0"})

    assert [row[0] for row in exchanges(office)] == [exchange_id]  # processed once
    assert query(office.settings, "SELECT count(*) FROM receipt") == [(1,)]
    assert query(office.settings, "SELECT count(*) FROM record") == [(3,)]
    assert query(office.settings, "SELECT exchange_id, status FROM mailattachment") == [(exchange_id, "processed")]
    assert mail_servers.folder_count(OFFICE, "INBOX") == 0 and mail_servers.folder_count(OFFICE, "Processed") == 1
    [reply] = replies(mail_servers)
    assert reply["In-Reply-To"] == "<crash@hospital.county.test>"
    assert len(replies(mail_servers, 2, timeout=4)) == 1
    kept = office.settings.mailbox_root / "hospital" / "processed" / f"mail-{exchange_id}-{SPECIMEN}"
    assert kept.read_bytes() == specimen(SPECIMEN)


# -- the server's certificate, mixed outcomes, forwarded mail ---------------------------------


def _reconfigure(office: Gateway, home: Path, mail_servers: MailServers, **changes: str) -> Gateway:
    config = home / CONFIG_FILE
    text = config.read_text(encoding="utf-8")
    for key, value in changes.items():
        import re

        if value == "":
            text = re.sub(rf"^{key} = .*\n", "", text, flags=re.M)
        elif re.search(rf"^{key} = ", text, flags=re.M):
            text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        else:
            text = text.replace("\n[mail.senders]", f"\n{key} = {value}\n[mail.senders]")
    config.write_text(text, encoding="utf-8")
    return Gateway(load_settings(home))


def server_cert_sha256(mail_servers: MailServers) -> str:
    der = subprocess.run(["openssl", "x509", "-in", str(mail_servers.cert), "-outform", "DER"], capture_output=True, check=True).stdout
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_starttls_with_the_server_certificate_pinned(office: Gateway, mail_servers: MailServers, home: Path) -> None:
    from gateway.errors import TransportError

    mail_servers.send(births_mail("<pinned@hospital.county.test>"), HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)
    wrong = _reconfigure(office, home, mail_servers, security='"starttls"', imap_port=str(mail_servers.imap_port), ca_file="",
                         cert_sha256='"' + ":".join(["00"] * 32) + '"')
    try:
        with pytest.raises(TransportError, match="pinned"):
            mail_pass(wrong)
    finally:
        wrong.close()
    assert mail_servers.folder_count(OFFICE, "INBOX") == 1  # nothing read, nothing moved
    pinned = _reconfigure(office, home, mail_servers, cert_sha256=f'"{server_cert_sha256(mail_servers)}"')
    try:
        done = mail_pass(pinned, SmtpReplier.configured(pinned.settings))  # the SMTP side checks the same pin
    finally:
        pinned.close()
    assert done is not None and [m.status for m in done.messages] == ["processed"]
    [reply] = replies(mail_servers)
    assert reply["In-Reply-To"] == "<pinned@hospital.county.test>"


def test_attachments_that_end_differently_and_the_reply_lists_each(office: Gateway, mail_servers: MailServers) -> None:
    mail_servers.send(births_mail("<first-copy@hospital.county.test>"), HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)
    mail_pass(office)
    message = births_mail("<mixed@hospital.county.test>", name="again.csv")  # the same bytes: a duplicate
    message.add_attachment(b"hello,world\n", maintype="text", subtype="csv", filename="notes.csv")  # no adapter reads it
    mail_servers.send(message, HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)

    done = mail_pass(office, SmtpReplier.configured(office.settings))

    assert done is not None and [m.status for m in done.messages] == ["processed"]
    assert [a.status for a in done.messages[0].attachments] == ["duplicate", "rejected"]
    assert mail_servers.folder_count(OFFICE, "Processed") == 2
    # The first message had no reply yet (that pass sent none): it gets its own now.
    [reply] = [r for r in replies(mail_servers, 2) if r["In-Reply-To"] == "<mixed@hospital.county.test>"]
    text = reply.get_body(("plain",)).get_content()
    assert "附件 1「again.csv」:重复文件" in text and "a duplicate of a file already received" in text
    assert "附件 2「notes.csv」:被拒收" in text and 'Attachment 2 "notes.csv": refused' in text
    names = {part.get_filename() for part in reply.iter_attachments()}
    assert {"again.csv.receipt.json", "again.csv.receipt.json.asc", "notes.csv.receipt.json", "notes.csv.receipt.json.asc"} <= names


def test_a_forwarded_mail_gives_the_file_inside_it(office: Gateway, mail_servers: MailServers) -> None:
    forwarded = EmailMessage()
    forwarded["From"] = HOSPITAL
    forwarded["To"] = OFFICE
    forwarded["Subject"] = "Fwd: 10月出生信息"
    forwarded["Message-ID"] = "<forwarded@hospital.county.test>"
    forwarded.set_content("转发 forwarding the earlier mail")
    forwarded.add_attachment(births_mail("<inner@hospital.county.test>"))  # message/rfc822
    mail_servers.send(forwarded, HOSPITAL)
    mail_servers.wait_for(OFFICE, 1)

    done = mail_pass(office)

    assert done is not None and [m.status for m in done.messages] == ["processed"]
    assert [(a.position, a.name, a.status) for a in done.messages[0].attachments] == [(1, SPECIMEN, "processed")]
    assert [row[2] for row in exchanges(office)] == ["processed"]


# -- the console lists held mail, masked --------------------------------------------------------

from console_helpers import served  # noqa: E402,F401 - the console tests' shared home and `gateway serve`


def test_the_console_lists_held_mail_masked(served) -> None:  # type: ignore[no-untyped-def]
    from gateway.store import session_scope
    from gateway.store.mail_models import MailMessage

    engine = served.engine()
    try:
        with session_scope(engine) as session:
            session.add(MailMessage(message_id="<console-held@county.test>", sender="zhangsan.clerk@county.test", department=None,
                                    subject="陈小明 出生信息", status="held", detail="发件人未登记 / unknown sender"))
    finally:
        engine.dispose()
    http, _ = served.console.session("op")
    page = http.get(served.console.url + "/jobs", timeout=30).text
    table = page.split('id="held-mail"', 1)[1].split("</table>", 1)[0]
    assert "z…@county.test" in table and "发件人未登记 / unknown sender" in table
    assert "zhangsan.clerk" not in page and "陈小明" not in page  # the address and a name in the subject: masked


def test_an_html_only_message_and_a_too_large_attachment_each_get_a_defined_outcome(office: Gateway, mail_servers: MailServers, home: Path) -> None:
    html = EmailMessage()
    html["From"], html["To"], html["Subject"], html["Message-ID"] = HOSPITAL, OFFICE, "见正文", "<html-only@hospital.county.test>"
    html.set_content("<p>出生信息见下表 the births are below</p>", subtype="html")
    mail_servers.send(html, HOSPITAL)
    large = births_mail("<large@hospital.county.test>", name="big.csv", data=b"x" * 300_000)
    large.add_attachment(specimen(SPECIMEN), maintype="text", subtype="csv", filename=SPECIMEN)
    mail_servers.send(large, HOSPITAL)
    mail_servers.wait_for(OFFICE, 2)
    limited = _reconfigure(office, home, mail_servers, max_attachment_mb="0.1")
    try:
        done = mail_pass(limited, SmtpReplier.configured(limited.settings))
        again = mail_pass(limited)
    finally:
        limited.close()

    assert done is not None and again is not None and again.messages == []
    by_id = {m.message_id: m for m in done.messages}
    assert by_id["<html-only@hospital.county.test>"].status == "rejected"
    assert [(a.name, a.status) for a in by_id["<large@hospital.county.test>"].attachments] == [("big.csv", "too_large"), (SPECIMEN, "processed")]
    assert [row[2] for row in exchanges(office)] == ["processed"]  # the large one made none
    texts = {r["In-Reply-To"]: r.get_body(("plain",)).get_content() for r in replies(mail_servers, 2)}
    assert "HTML-only" in texts["<html-only@hospital.county.test>"] and "只有 HTML 正文" in texts["<html-only@hospital.county.test>"]
    assert "附件 1「big.csv」:附件过大" in texts["<large@hospital.county.test>"]


def pgp_mime(ring: DepartmentKeyring, fingerprint: str, message_id: str, key_sender: str = HOSPITAL) -> bytes:
    """A PGP/MIME signed message (RFC 3156) as a mail client writes it: the signed part's
    bytes exactly as sent, CRLF line ends, the detached signature over them."""
    import email.policy
    from email.mime.multipart import MIMEMultipart

    inner = MIMEMultipart("mixed", policy=email.policy.SMTP)
    text = EmailMessage(policy=email.policy.SMTP)
    text.set_content("附件是本月出生信息 births attached")
    inner.attach(text)
    csv = EmailMessage(policy=email.policy.SMTP)
    csv.set_content(specimen(SPECIMEN), maintype="text", subtype="csv", filename=SPECIMEN)
    del csv["MIME-Version"]
    inner.attach(csv)
    del inner["MIME-Version"]
    content = inner.as_bytes(policy=email.policy.SMTP).rstrip(b"\r\n")
    signature = ring.sign(content, fingerprint)
    boundary = "gwt-signed-boundary-1"
    head = (
        f"From: {key_sender}\r\nTo: {OFFICE}\r\nSubject: signed births\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="{boundary}"\r\n\r\n'
    ).encode("ascii")
    return (
        head + f"--{boundary}\r\n".encode() + content + f"\r\n--{boundary}\r\n".encode()
        + b'Content-Type: application/pgp-signature; name="signature.asc"\r\n\r\n' + signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        + f"\r\n--{boundary}--\r\n".encode()
    )


def test_a_pgp_mime_signed_message_of_a_signing_department_is_processed(office: Gateway, mail_servers: MailServers, hospital_key) -> None:
    import smtplib

    signing(office, hospital_key)
    ring, fingerprint = hospital_key
    good = pgp_mime(ring, fingerprint, "<pgp-mime@hospital.county.test>")
    tampered = pgp_mime(ring, fingerprint, "<pgp-mime-changed@hospital.county.test>").replace(b"births attached", b"births attachex")
    for raw in (good, tampered):
        with smtplib.SMTP("127.0.0.1", mail_servers.submission_port, timeout=30) as client:
            client.starttls(context=mail_servers.tls_context())
            client.login(HOSPITAL, password_of(HOSPITAL))
            client.sendmail(HOSPITAL, [OFFICE], raw)
    mail_servers.wait_for(OFFICE, 2)

    done = mail_pass(office)

    assert done is not None
    by_id = {m.message_id: m for m in done.messages}
    assert by_id["<pgp-mime@hospital.county.test>"].status == "processed"
    assert [(a.name, a.status) for a in by_id["<pgp-mime@hospital.county.test>"].attachments] == [(SPECIMEN, "processed")]
    assert by_id["<pgp-mime-changed@hospital.county.test>"].status == "held"
    assert [row[2] for row in exchanges(office)] == ["processed"]
