"""Email channel: one text+HTML mail per alert over SMTP (STARTTLS, implicit TLS or plain).

The password is read from the environment variable named by `password_env`,
never from the config file.  A mail's `Message-ID` is `<alert id@figwatch>`,
so a retried alert that did reach the server can be recognised as a duplicate.
smtplib runs in a worker thread; its socket timeout bounds every step.
"""

from __future__ import annotations

import asyncio
import html
import smtplib
import ssl
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from ..alerts import PendingAlert
from ..errors import DeliveryError, PermanentDeliveryError
from ..settings import EmailChannelConfig
from .base import Channel, ChannelContext, ChannelNotConfigured, log
from .summary import change_line, changes_of, headline

__all__ = ["EmailChannel", "build_message"]

_FIELDS = ("source", "url", "entity", "metric", "period", "old_value", "new_value", "unit",
           "other_source", "sentence", "detected_at")


def _subject(alert: PendingAlert) -> str:
    return f"[figwatch] {headline(alert)}"


def _details(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, str(data[k])) for k in _FIELDS if data.get(k) not in (None, "")]


def _text_body(alert: PendingAlert) -> str:
    changes = changes_of(alert)
    if not changes:  # ops alerts and unknown types: the headline and every field
        lines = [headline(alert), ""]
        lines += [f"{k}: {v}" for k, v in alert.data.items() if v not in (None, "")]
        return "\n".join(lines) + "\n"
    parts = [f"{len(changes)} changes\n"] if alert.type == "figure.digest" else []
    for data in changes:
        lines = [change_line(data)]
        lines += [f"  {k}: {v}" for k, v in _details(data)]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts) + f"\n-- \nfigwatch alert {alert.id}\n"


def _html_body(alert: PendingAlert) -> str:
    e = html.escape
    changes = changes_of(alert)
    sections: list[str] = []
    items = changes or [alert.data]
    for data in items:
        title = change_line(data) if changes else headline(alert)
        rows = _details(data) if changes else [(k, str(v)) for k, v in data.items()
                                               if v not in (None, "")]
        cells = "".join(
            f"<tr><th align=\"left\">{e(k)}</th><td>"
            + (f"<a href=\"{e(v)}\">{e(v)}</a>" if k == "url" else e(v))
            + "</td></tr>" for k, v in rows)
        sections.append(f"<h3>{e(title)}</h3>\n<table>{cells}</table>")
    head = f"<h2>{e(headline(alert))}</h2>\n" if alert.type == "figure.digest" else ""
    return (f"<!doctype html><html><body>{head}" + "\n".join(sections)
            + f"<p><small>figwatch alert {e(alert.id)}</small></p></body></html>")


def build_message(alert: PendingAlert, sender: str, to: tuple[str, ...]) -> EmailMessage:
    """The multipart/alternative mail for `alert` (text first, HTML preferred)."""
    msg = EmailMessage()
    msg["Subject"] = _subject(alert)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    created = alert.created_at
    msg["Date"] = format_datetime(created if created.tzinfo else created.replace(tzinfo=UTC))
    msg["Message-ID"] = f"<{alert.id}@figwatch>"
    msg["X-Figwatch-Alert-Type"] = alert.type
    msg.set_content(_text_body(alert))
    msg.add_alternative(_html_body(alert), subtype="html")
    return msg


class EmailChannel(Channel):
    """Mail each alert as text and HTML over SMTP (STARTTLS, implicit TLS or plain).

    Keys: `smtp_host`, `smtp_port` (587), `tls` ("starttls", "tls" for implicit TLS
    on 465, or "none"), `username` and `password_env` (the name of the variable
    holding the password; never the password itself), `from`, `to`, `timeout`.
    A 4xx reply or an unreachable server is retried; a 5xx reply is not.
    """

    kind = "email"

    def __init__(self, config: EmailChannelConfig, *, password: str | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(config.name)
        self.config = config
        self._password = password
        self._ssl = ssl_context
        self.where = f"{config.smtp_host}:{config.smtp_port}"

    @classmethod
    def from_config(cls, config: Any, context: ChannelContext) -> EmailChannel:
        assert isinstance(config, EmailChannelConfig)
        password = None
        if config.password_env:
            password = context.env.get(config.password_env) or None
            if password is None:
                raise ChannelNotConfigured(f"password_env {config.password_env} is not set")
            if not config.username:
                raise ChannelNotConfigured("password_env is set but username is not")
        return cls(config, password=password, ssl_context=context.options.get("ssl_context"))

    async def send(self, alert: PendingAlert) -> None:
        msg = build_message(alert, self.config.sender, self.config.to)
        await asyncio.to_thread(self._deliver, msg)

    def _context(self) -> ssl.SSLContext:
        return self._ssl or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        if cfg.tls == "tls":
            return smtplib.SMTP_SSL(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout,
                                    context=self._context())
        smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout)
        if cfg.tls == "starttls":
            try:
                smtp.starttls(context=self._context())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _deliver(self, msg: EmailMessage) -> None:
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise self._translate(exc, "cannot connect to") from exc
        try:
            with smtp:
                if self.config.username and self._password is not None:
                    smtp.login(self.config.username, self._password)
                refused = smtp.send_message(msg, from_addr=self.config.sender,
                                            to_addrs=list(self.config.to))
        except (OSError, smtplib.SMTPException) as exc:
            raise self._translate(exc, "SMTP failed at") from exc
        if refused:
            # Others got the mail; a retry would send it to them twice.
            log.warning("channel %r: %s refused some recipients: %s",
                        self.name, self.where, refused)

    def _translate(self, exc: BaseException, doing: str) -> DeliveryError:
        where = self.where
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return PermanentDeliveryError(self.name, f"{where}: {exc} (check `tls`)")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{rcpt}: {code} {_text(msg)}"
                               for rcpt, (code, msg) in exc.recipients.items())
            cls = PermanentDeliveryError if all(c >= 500 for c in codes) else DeliveryError
            return cls(self.name, f"{where} refused recipients: {detail}")
        if isinstance(exc, smtplib.SMTPResponseException):
            cls = PermanentDeliveryError if exc.smtp_code >= 500 else DeliveryError
            return cls(self.name, f"{where} replied {exc.smtp_code} {_text(exc.smtp_error)}")
        if isinstance(exc, TimeoutError):
            return DeliveryError(self.name, f"{doing} {where}: timed out")
        return DeliveryError(self.name, f"{doing} {where}: {type(exc).__name__}: {exc}")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
