"""A small SMTP server speaking the real protocol (EHLO, MAIL, RCPT, DATA, QUIT) that keeps what it
receives, so the real aiosmtplib client code is tested without a mail provider."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message


def _address(command: str) -> str:
    """`MAIL FROM:<a@b> BODY=8BITMIME` -> `a@b`."""
    return command.split("<", 1)[1].split(">", 1)[0]


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    message: Message


@dataclass
class SMTPRecorder:
    messages: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> "SMTPRecorder":
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def reply(*lines: str) -> None:
            for line in lines:
                writer.write(line.encode() + b"\r\n")

        reply("220 recorder ESMTP")
        mail_from, recipients = "", []
        while line := (await reader.readline()).decode().strip():
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                reply("250-recorder", "250 8BITMIME")
            elif verb == "MAIL":
                mail_from, recipients = _address(line), []
                reply("250 OK")
            elif verb == "RCPT":
                recipients.append(_address(line))
                reply("250 OK")
            elif verb == "DATA":
                reply("354 end with <CRLF>.<CRLF>")
                await writer.drain()
                self.messages.append(Received(mail_from, recipients, message_from_bytes(await self._data(reader), policy=policy.default)))
                reply("250 OK queued")
            elif verb == "QUIT":
                reply("221 bye")
                await writer.drain()
                break
            else:
                reply("250 OK")
            await writer.drain()
        writer.close()

    @staticmethod
    async def _data(reader: asyncio.StreamReader) -> bytes:
        lines = []
        while (line := await reader.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)
