"""Outgoing email (invites). SMTP via aiosmtplib when `INSIGHTS_SMTP_HOST` is set; otherwise the
message is written to the `insights.mail` log, so a fresh install can still hand out invites."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from server.settings import Settings

log = logging.getLogger("insights.mail")

SMTP_TIMEOUT = 10.0  # seconds; mail goes out after commit, inside the request


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


def _message(settings: Settings, mail: Mail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg.set_content(mail.body)
    return msg


async def send(settings: Settings, mail: Mail) -> None:
    """Deliver one message; raises when the SMTP server refuses or cannot be reached."""
    if not settings.smtp_host:
        log.info("email not sent (no SMTP host configured)\nTo: %s\nSubject: %s\n\n%s", mail.to, mail.subject, mail.body)
        return
    await aiosmtplib.send(
        _message(settings, mail), hostname=settings.smtp_host, port=settings.smtp_port,
        username=settings.smtp_username, password=settings.smtp_password,
        start_tls=settings.smtp_starttls, timeout=SMTP_TIMEOUT,
    )
    log.info("email sent to %s: %s", mail.to, mail.subject)


async def send_quietly(settings: Settings, mail: Mail) -> bool:
    """Deliver, logging instead of raising: a mail failure must never undo or fail the change that
    caused it (the inviter can re-send the invite)."""
    try:
        await send(settings, mail)
        return True
    except Exception as e:  # noqa: BLE001  any SMTP or network failure
        log.warning("could not send email to %s (%s): %s", mail.to, mail.subject, e)
        return False
