"""Email channel against a real SMTP server (aiosmtpd on 127.0.0.1): plain, STARTTLS with
AUTH, implicit TLS, refusals, and the dispatcher keeping undelivered mail pending."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from service.alerts import PendingAlert
from service.channels import EmailChannel, build_channels
from service.errors import DeliveryError, PermanentDeliveryError
from service.outbox import Dispatcher
from service.settings import EmailChannelConfig, parse_settings

from .memory_store import Clock, MemoryStore

T0 = datetime(2024, 2, 1, 8, 0, tzinfo=UTC)
USER, PASSWORD = "alerts@example.test", "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def change(entity: str, metric: str, old: str | None, new: str | None, kind: str = "changed",
           unit: str = "USD") -> dict[str, Any]:
    return {"kind": kind, "source": "tmtpost", "url": "https://www.tmtpost.com/6923401.html",
            "entity": entity, "metric": metric, "period": None, "unit": unit,
            "old_value": old, "new_value": new, "sentence": f"{entity} <b>{metric}</b> moved.",
            "other_source": None, "detected_at": T0.isoformat()}


NVIDIA = change("NVIDIA", "market_cap", "1790000000000", "1850000000000")


def alert(alert_id: str = "alrt_mail_1", data: dict[str, Any] | None = None,
          type_: str = "figure.changed", channel: str = "mail") -> PendingAlert:
    return PendingAlert(id=alert_id, channel=channel, type=type_, data=data or NVIDIA,
                        created_at=T0)


@dataclass
class Sink:
    """aiosmtpd handler: keeps what arrives; `rcpt_reply` plays a refusing server."""

    rcpt_reply: str | None = None
    mails: list[tuple[Envelope, EmailMessage, bool]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        over_tls = server.transport.get_extra_info("ssl_object") is not None
        self.mails.append((envelope, msg, over_tls))
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode():
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@dataclass
class Server:
    sink: Sink
    port: int


@pytest.fixture
def smtp() -> Iterator[Server]:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Server(sink, port)
    finally:
        controller.stop()


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no `openssl` command (and `cryptography` is not installed) to make a "
                    "self-signed certificate for the TLS cases")
    d: Path = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return Tls(server, ssl.create_default_context(cafile=str(cert)))


def config(port: int, tls: str = "none", **extra: Any) -> EmailChannelConfig:
    return EmailChannelConfig.model_validate(
        {"name": "mail", "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": port,
         "tls": tls, "from": "figwatch@example.test",
         "to": ["ana@example.test", "bo@example.test"], "timeout": 5} | extra)


async def test_mail_is_multipart_with_message_id_subject_and_recipients(smtp: Server) -> None:
    await EmailChannel(config(smtp.port)).send(alert())
    [(envelope, msg, _)] = smtp.sink.mails
    assert envelope.mail_from == "figwatch@example.test"
    assert envelope.rcpt_tos == ["ana@example.test", "bo@example.test"]
    assert msg["Subject"] == "[figwatch] NVIDIA market_cap changed: 1.79T → 1.85T USD"
    assert msg["Message-ID"] == "<alrt_mail_1@figwatch>"
    assert msg["To"] == "ana@example.test, bo@example.test"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "NVIDIA market_cap changed: 1.79T → 1.85T USD" in text.get_content()
    assert "NVIDIA <b>market_cap</b> moved." in text.get_content()
    assert "NVIDIA &lt;b&gt;market_cap&lt;/b&gt; moved." in html.get_content()  # escaped
    assert '<a href="https://www.tmtpost.com/6923401.html">' in html.get_content()


async def test_digest_mail_lists_every_change(smtp: Server) -> None:
    changes = [NVIDIA, change("OpenAI", "valuation", "86000000000", "157000000000"),
               change("China AI", "deal_count", None, "232", kind="new", unit="count")]
    digest = alert("alrt_digest", {"changes": changes}, type_="figure.digest")
    await EmailChannel(config(smtp.port)).send(digest)
    [(_, msg, _)] = smtp.sink.mails
    assert msg["Subject"] == "[figwatch] 3 changes"
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    for line in ("NVIDIA market_cap changed: 1.79T → 1.85T USD",
                 "OpenAI valuation changed: 86B → 157B USD",
                 "China AI deal_count new: 232"):
        assert line in text.get_content()
        assert line in html.get_content()


async def test_starttls_with_auth_password_from_env(tls: Tls,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, tls_context=tls.server,
                            require_starttls=True, authenticator=sink.authenticate,
                            auth_required=True)
    controller.start()
    try:
        settings = parse_settings(f"""
[[channels]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
tls = "starttls"
username = "{USER}"
password_env = "FW_TEST_SMTP_PASSWORD"
from = "figwatch@example.test"
to = ["ana@example.test"]
""")
        monkeypatch.setenv("FW_TEST_SMTP_PASSWORD", PASSWORD)
        good = build_channels(settings, options={"ssl_context": tls.client})
        await good["mail"].send(alert())
        bad = build_channels(settings, env={"FW_TEST_SMTP_PASSWORD": "wrong"},
                             options={"ssl_context": tls.client})
        with pytest.raises(PermanentDeliveryError, match="535"):
            await bad["mail"].send(alert("alrt_2"))
        # Without TLS the server refuses to go on: a config mistake, not worth retrying.
        plain = EmailChannel(config(port, username=USER, password_env="X"), password=PASSWORD)
        with pytest.raises(PermanentDeliveryError, match=f"127.0.0.1:{port}"):
            await plain.send(alert("alrt_3"))
    finally:
        controller.stop()
    assert sink.logins == [USER]
    [(_, msg, over_tls)] = sink.mails
    assert over_tls and msg["Message-ID"] == "<alrt_mail_1@figwatch>"


async def test_implicit_tls(tls: Tls) -> None:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ssl_context=tls.server)
    controller.start()
    try:
        await EmailChannel(config(port, tls="tls"), ssl_context=tls.client).send(alert())
        # The system trust store does not know the self-signed certificate.
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            await EmailChannel(config(port, tls="tls")).send(alert("alrt_2"))
    finally:
        controller.stop()
    [(_, msg, over_tls)] = sink.mails
    assert over_tls and msg["Subject"].startswith("[figwatch] NVIDIA")


def test_missing_password_variable_switches_the_channel_off(
        caplog: pytest.LogCaptureFixture) -> None:
    settings = parse_settings("""
[[channels]]
name = "mail"
kind = "email"
smtp_host = "smtp.example.test"
username = "u"
password_env = "FW_TEST_UNSET_PASSWORD"
from = "figwatch@example.test"
to = ["ana@example.test"]

[[channels]]
name = "console"
kind = "stdout"
""")
    with caplog.at_level(logging.WARNING, logger="figwatch.channels"):
        channels = build_channels(settings, env={})
    assert list(channels) == ["console"]
    assert channels.disabled == {"mail": "password_env FW_TEST_UNSET_PASSWORD is not set"}
    assert [r.getMessage() for r in caplog.records] == [
        "channel 'mail' (email) switched off: password_env FW_TEST_UNSET_PASSWORD is not set"]


async def test_ops_alert_mail(smtp: Server) -> None:
    ops = alert("alrt_ops", {"source": "tmtpost", "url": "https://www.tmtpost.com/",
                             "error": "3 fetches failed: 503"}, type_="ops.source_error")
    await EmailChannel(config(smtp.port)).send(ops)
    [(_, msg, _)] = smtp.sink.mails
    assert msg["Subject"] == "[figwatch] source tmtpost: source_error: 3 fetches failed: 503"
    text = msg.get_body(preferencelist=("plain",))
    assert text is not None and "url: https://www.tmtpost.com/" in text.get_content()


async def test_unreachable_server_is_retryable_and_names_host_port() -> None:
    port = free_port()
    with pytest.raises(DeliveryError, match=f"cannot connect to 127.0.0.1:{port}") as caught:
        await EmailChannel(config(port)).send(alert())
    assert not isinstance(caught.value, PermanentDeliveryError)


async def test_permanent_rejection_is_not_retried(smtp: Server) -> None:
    smtp.sink.rcpt_reply = "550 5.1.1 no such mailbox"
    with pytest.raises(PermanentDeliveryError, match="550"):
        await EmailChannel(config(smtp.port)).send(alert())
    assert smtp.sink.mails == []


# --- the dispatcher with a real SMTP server -------------------------------------------


async def test_refused_then_accepted_is_delivered_once(smtp: Server) -> None:
    store, clock = MemoryStore(alert()), Clock(T0)
    dispatcher = Dispatcher(store, {"mail": EmailChannel(config(smtp.port))}, clock=clock,
                            give_up_after=timedelta(hours=6))
    smtp.sink.rcpt_reply = "451 4.3.0 try later"
    report = await dispatcher.run_once()
    assert (report.delivered, report.retried, report.failed) == (0, 1, 0)
    row = store.rows["alrt_mail_1"]
    assert row.state == "pending" and "451" in row.errors[0]

    smtp.sink.rcpt_reply = None
    assert (await dispatcher.run_once()).total == 0  # not due yet
    assert row.next_attempt_at is not None
    clock.now = row.next_attempt_at
    report = await dispatcher.run_once()
    assert report.delivered == 1 and row.state == "delivered"
    assert len(smtp.sink.mails) == 1


async def test_unreachable_server_leaves_the_alert_pending() -> None:
    port = free_port()
    store, clock = MemoryStore(alert()), Clock(T0)
    dispatcher = Dispatcher(store, {"mail": EmailChannel(config(port))}, clock=clock,
                            give_up_after=timedelta(hours=6))
    report = await dispatcher.run_once()
    assert report.retried == 1
    row = store.rows["alrt_mail_1"]
    assert row.state == "pending" and row.next_attempt_at is not None
    assert f"127.0.0.1:{port}" in row.errors[0]
