"""A real SMTP server for seatgate's outbox tests (aiosmtpd).

Usage: sink.py PORT OUT_FILE [--starttls CERT KEY]

Every accepted message is appended to OUT_FILE as one JSON line: {"from", "to", "data"}.
Recipients whose local part starts with "reject" are refused at RCPT with 550 (a permanent
failure); "busy" with 451 (a temporary one). Prints "ready" once it accepts connections.
"""
import asyncio, json, ssl, sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local.startswith("busy"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with open(self.out, "a") as f:
            f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                "data": envelope.content.decode("utf8", "replace")}) + "\n")
        return "250 Message accepted for delivery"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    kwargs = {}
    if len(sys.argv) > 3 and sys.argv[3] == "--starttls":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        kwargs = {"tls_context": context, "require_starttls": True}
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
