"""aiosmtpd handler for junheng-notify's SMTP tests.

Stores each accepted message as an .eml file in $SMTP_SINK_DIR (written to a
temporary name, then renamed, so a poller never reads half a file) and answers
scripted replies chosen by address, imitating Chinese providers:

  recipient fail451...@  -> 451 DT:SPM please try again      (NetEase, transient)
  recipient fail550q...@ -> 550 Connection frequency limited (QQ, 5xx rate limit)
  recipient fail550...@  -> 550 mailbox unavailable          (permanent)
  recipient fail501r...@ -> 501 5.1.3 Bad recipient address syntax (one bad recipient)
  sender    fail501...@  -> 501 mail from address must be same as authorization user

Run: PYTHONPATH=tests SMTP_SINK_DIR=/tmp/x python3 -m aiosmtpd -n -l 127.0.0.1:2525 -c smtp_sink.Sink
"""

import os
import uuid


class Sink:
    def __init__(self):
        self.dir = os.environ["SMTP_SINK_DIR"]
        os.makedirs(self.dir, exist_ok=True)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address.split("@")[0].startswith("fail501"):
            return "501 mail from address must be same as authorization user"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("fail501r"):
            return "501 5.1.3 Bad recipient address syntax"
        if local.startswith("fail451"):
            return "451 DT:SPM please try again"
        if local.startswith("fail550q"):
            return "550 Connection frequency limited"
        if local.startswith("fail550"):
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex
        tmp = os.path.join(self.dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.dir, name + ".eml"))
        return "250 Message accepted for delivery"
