"""Issue 22, the test county's mail server: a clerk's mail sent with smtplib to the real
Postfix's submission port (STARTTLS, login) arrives in the population office's real Dovecot
mailbox, read back with imapclient over IMAPS with only the throwaway CA trusted."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient
from mail_servers import HOSPITAL, OFFICE, MailServers, password_of

pytestmark = pytest.mark.backend_independent


def test_a_mail_sent_to_submission_is_read_back_over_imaps(mail_servers: MailServers) -> None:
    message = EmailMessage()
    message["From"] = HOSPITAL
    message["To"] = OFFICE
    message["Subject"] = "出生医学证明 2026-11"
    message["Message-ID"] = "<fixture-proof@hospital.county.test>"
    message.set_content("见附件。See the attachment.")
    message.add_attachment(b"col1,col2\n1,2\n", maintype="text", subtype="csv", filename="births.csv")
    mail_servers.send(message, HOSPITAL)

    [received] = [m for m in mail_servers.wait_for(OFFICE) if m["Message-ID"] == message["Message-ID"]]
    assert received["Subject"] == "出生医学证明 2026-11"
    [attachment] = list(received.iter_attachments())
    assert attachment.get_filename() == "births.csv"
    assert attachment.get_content() == "col1,col2\n1,2\n"


def test_imap_with_starttls_and_the_ca_pinned(mail_servers: MailServers) -> None:
    client = IMAPClient("127.0.0.1", port=mail_servers.imap_port, ssl=False, timeout=30)
    client.starttls(mail_servers.tls_context())
    client.login(OFFICE, password_of(OFFICE))
    assert client.select_folder("INBOX")[b"EXISTS"] >= 0
    client.logout()


def test_a_client_that_does_not_trust_the_ca_is_refused(mail_servers: MailServers) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient("127.0.0.1", port=mail_servers.imaps_port, ssl=True, ssl_context=ssl.create_default_context(), timeout=10)


def test_submission_refuses_a_wrong_password(mail_servers: MailServers) -> None:
    import smtplib

    with smtplib.SMTP("127.0.0.1", mail_servers.submission_port, timeout=30) as client:
        client.starttls(context=mail_servers.tls_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(HOSPITAL, "wrong")
