"""A real county mail server for the mail tests: Dovecot (IMAPS, IMAP with STARTTLS, LMTP,
SASL auth) and Postfix (submission with STARTTLS and SASL auth through Dovecot), both on
free loopback ports, with a throwaway CA and server certificate, started per test session
the way tests/sshd.py starts sshd.

Everything lives under one temporary folder (configs, certificates, Maildirs, Postfix's
queue) and is removed by `cleanup()`. Machine state: a system account `gwt-vmail` owns the
Maildirs (Dovecot refuses to deliver as root) and is left in place like sshd's accounts.

Why as root: the suite runs as root here (like the sshd tests), and Postfix's master insists
on running as root (it binds, then drops each service to `mail_owner`); its queue must be
root-owned with postfix-owned subfolders. Dovecot could run unprivileged but then cannot
switch to the mail user; running both as root, each with its own config and base folder,
is what a county server does too. Needs Debian's dovecot-imapd, dovecot-lmtpd and postfix
(`scripts/bootstrap` installs them and stops their system services).
"""

from __future__ import annotations

import email
import email.policy
import os
import pwd
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from sshd import _children, ensure_account

DOVECOT = Path("/usr/sbin/dovecot")
POSTFIX = Path("/usr/sbin/postfix")
POSTFIX_MASTER = Path("/usr/lib/postfix/sbin/master")
MAIL_ACCOUNT = "gwt-vmail"
DOMAIN = "county.test"
# The population office's box (人口计生部门的固定电子信箱) and the departments' clerks.
OFFICE = f"renkou@{DOMAIN}"
HOSPITAL = f"hospital@{DOMAIN}"
POLICE = f"police@{DOMAIN}"
STRANGER = f"stranger@{DOMAIN}"
USERS = (OFFICE, HOSPITAL, POLICE, STRANGER)


class MailServerError(RuntimeError):
    """The test mail server could not be set up or started (a test failure, never a skip)."""


def password_of(user: str) -> str:
    return f"pw-{user.split('@')[0]}-secret"


def _run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(command), capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise MailServerError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def _free_ports(count: int) -> list[int]:
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [p.getsockname()[1] for p in probes]
    finally:
        for probe in probes:
            probe.close()


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / mail.county.test signed by it."""
    ca_key, ca_cert = folder / "ca.key", folder / "ca.crt"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.crt"
    ext = folder / "server.ext"
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gwt test county CA",
         "-keyout", str(ca_key), "-out", str(ca_cert))
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=mail.{DOMAIN}",
         "-keyout", str(key), "-out", str(csr))
    ext.write_text(f"subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:mail.{DOMAIN}\n"
                   "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
         "-days", "2", "-extfile", str(ext), "-out", str(cert))
    for path in (key, ca_key):
        os.chmod(path, 0o600)
    return ca_cert, cert, key


class MailServers:
    """One Dovecot and one Postfix on 127.0.0.1 with their own configs, users and Maildirs."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise MailServerError("the mail tests start a real Postfix and Dovecot and must run as root")
        for binary in (DOVECOT, POSTFIX, POSTFIX_MASTER):
            if not binary.exists():
                raise MailServerError(f"{binary} is missing: run scripts/bootstrap (it installs dovecot and postfix)")
        ensure_account(MAIL_ACCOUNT)
        self.base = Path(tempfile.mkdtemp(prefix="gwt-mail-", dir="/tmp"))
        os.chmod(self.base, 0o755)  # dovecot's auth and login processes run as its own users
        self.dovecot_dir = self.base / "dovecot"
        self.postfix_dir = self.base / "postfix"
        self.queue = self.base / "queue"
        self.maildirs = self.base / "mail"
        for folder in (self.dovecot_dir, self.postfix_dir, self.queue, self.maildirs):
            folder.mkdir(mode=0o755)
        account = pwd.getpwnam(MAIL_ACCOUNT)
        os.chown(self.maildirs, account.pw_uid, account.pw_gid)
        self.ca_file, self.cert, self.key = make_certificates(self.base)
        self.imaps_port, self.imap_port, self.lmtp_port, self.auth_port, self.submission_port = _free_ports(5)
        self.dovecot: subprocess.Popen | None = None
        self.postfix_started = False

    # -- configuration ------------------------------------------------------------------

    def _dovecot_config(self) -> Path:
        passwd = self.dovecot_dir / "passwd"
        passwd.write_text("".join(f"{u}:{{PLAIN}}{password_of(u)}::::::\n" for u in USERS))
        os.chmod(passwd, 0o644)
        config = self.dovecot_dir / "dovecot.conf"
        d = self.dovecot_dir
        config.write_text(f"""
instance_name = gwt-{self.base.name}
base_dir = {d}/run
state_dir = {d}/state
listen = 127.0.0.1
protocols = imap lmtp
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={MAIL_ACCOUNT} gid={MAIL_ACCOUNT} home={self.maildirs}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    port = {self.lmtp_port}
  }}
}}
service auth {{
  inet_listener auth-postfix {{
    port = {self.auth_port}
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{DOMAIN}
}}
""")
        return config

    def _postfix_config(self) -> None:
        c = self.postfix_dir
        recipients = c / "recipients"
        recipients.write_text("".join(f"{u} OK\n" for u in USERS))
        (c / "main.cf").write_text(f"""
compatibility_level = 3.6
config_directory = {c}
queue_directory = {self.queue}
data_directory = {self.base}/postfix-data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = /var, /dev/stdout, {self.base}
maillog_file = {self.base}/postfix.log
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.{DOMAIN}
mydomain = {DOMAIN}
myorigin = {DOMAIN}
mydestination =
mynetworks = 127.0.0.0/8
relayhost =
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{recipients}
virtual_transport = lmtp:inet:127.0.0.1:{self.lmtp_port}
smtpd_tls_cert_file = {self.cert}
smtpd_tls_key_file = {self.key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{self.auth_port}
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
biff = no
""")
        proto = Path("/etc/postfix/master.cf.proto").read_text().splitlines()
        lines = []
        for line in proto:
            fields = line.split()
            if fields[:2] == ["smtp", "inet"] or (fields and fields[0] in ("postlog",)):
                continue  # no port 25; logging goes to maillog_file through postlogd below
            if len(fields) >= 8 and not line.startswith((" ", "\t", "#")) and fields[4] == "y":
                line = line.replace(f" {fields[4]} ", " n ", 1)  # no chroot: the test paths are outside it
            lines.append(line)
        lines += [
            f"127.0.0.1:{self.submission_port} inet n - n - - smtpd",
            "  -o syslog_name=postfix/submission",
            "  -o smtpd_tls_security_level=encrypt",
            "  -o smtpd_sasl_auth_enable=yes",
            "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject",
            "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        (c / "master.cf").write_text("\n".join(lines) + "\n")

    # -- running ------------------------------------------------------------------------

    def start(self) -> MailServers:
        try:
            self._start_dovecot()
            self._start_postfix()
        except BaseException:
            self.cleanup()
            raise
        return self

    def _start_dovecot(self) -> None:
        config = self._dovecot_config()
        _run(str(DOVECOT), "-c", str(config), "-n")  # a config error fails here, with dovecot's message
        self.dovecot = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self._wait(self.imap_port, b"* OK", "dovecot", self.dovecot_dir / "dovecot.log")

    def _start_postfix(self) -> None:
        self._postfix_config()
        env = {**os.environ, "MAIL_CONFIG": str(self.postfix_dir)}
        # Creates the queue's subfolders with postfix's owners and modes, and checks the config.
        _run(str(POSTFIX), "-c", str(self.postfix_dir), "check", env=env)
        _run(str(POSTFIX), "-c", str(self.postfix_dir), "start", env=env)
        self.postfix_started = True
        self._wait(self.submission_port, b"220 ", "postfix", self.base / "postfix.log")

    def _wait(self, port: int, greeting: bytes, name: str, log: Path) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if name == "dovecot" and self.dovecot is not None and self.dovecot.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
                    if probe.recv(256).startswith(greeting):
                        return
            except OSError:
                time.sleep(0.1)
        text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        if name == "dovecot" and self.dovecot is not None and self.dovecot.stderr is not None and self.dovecot.poll() is not None:
            text += self.dovecot.stderr.read().decode(errors="replace")
        raise MailServerError(f"{name} did not start on port {port}:\n{text}")

    def stop(self) -> None:
        if self.postfix_started:
            self.postfix_started = False
            subprocess.run([str(POSTFIX), "-c", str(self.postfix_dir), "stop"], capture_output=True, check=False,
                           env={**os.environ, "MAIL_CONFIG": str(self.postfix_dir)})
        process, self.dovecot = self.dovecot, None
        if process is not None:
            children = _children(process.pid)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stderr is not None:
                process.stderr.close()
            for pid in children:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- what clients need ----------------------------------------------------------------

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts only the throwaway CA (the pinned county CA)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def send(self, message: EmailMessage, user: str, *, sender: str | None = None) -> None:
        """Send as a clerk's mail client does: submission, STARTTLS, login, then the mail."""
        with smtplib.SMTP("127.0.0.1", self.submission_port, timeout=30) as client:
            client.starttls(context=self.tls_context())
            client.login(user, password_of(user))
            client.send_message(message, from_addr=sender)

    def imap(self, user: str):  # type: ignore[no-untyped-def]
        """An imapclient connection over IMAPS, logged in as `user`."""
        from imapclient import IMAPClient

        client = IMAPClient("127.0.0.1", port=self.imaps_port, ssl=True, ssl_context=self.tls_context(), timeout=30)
        client.login(user, password_of(user))
        return client

    def wait_for(self, user: str, count: int = 1, folder: str = "INBOX", timeout: float = 30) -> list[email.message.EmailMessage]:
        """The messages in `user`'s folder once there are at least `count` (Postfix delivers
        asynchronously: the queue manager hands the mail to LMTP a moment after submission)."""
        deadline = time.monotonic() + timeout
        while True:
            client = self.imap(user)
            try:
                client.select_folder(folder, readonly=True)
                uids = client.search("ALL")
                if len(uids) >= count or time.monotonic() > deadline:
                    fetched = client.fetch(uids, ["RFC822"]) if uids else {}
                    return [email.message_from_bytes(fetched[uid][b"RFC822"], policy=email.policy.default) for uid in sorted(fetched)]
            finally:
                client.logout()
            time.sleep(0.2)

    def empty(self, *users: str) -> None:
        """Delete every message and every folder but INBOX of `users` (the servers are shared
        by the session; each test starts from empty mailboxes)."""
        for user in users or USERS:
            client = self.imap(user)
            try:
                for _flags, _sep, name in client.list_folders():
                    if name != "INBOX":
                        client.delete_folder(name)
                client.select_folder("INBOX")
                uids = client.search("ALL")
                if uids:
                    client.delete_messages(uids)
                    client.expunge()
            finally:
                client.logout()

    def folder_count(self, user: str, folder: str) -> int:
        client = self.imap(user)
        try:
            if not client.folder_exists(folder):
                return 0
            return int(client.select_folder(folder, readonly=True)[b"EXISTS"])
        finally:
            client.logout()

    def deliver_again(self, user: str, raw: bytes) -> None:
        """The server delivering a message a second time (a retried LMTP delivery, a
        forwarding loop): the same bytes, the same Message-ID, appended to the INBOX."""
        client = self.imap(user)
        try:
            client.append("INBOX", raw)
        finally:
            client.logout()

    def log_text(self) -> str:
        parts = []
        for path in (self.dovecot_dir / "dovecot.log", self.base / "postfix.log"):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)


__all__ = ["MailServers", "MailServerError", "OFFICE", "HOSPITAL", "POLICE", "STRANGER", "password_of"]
