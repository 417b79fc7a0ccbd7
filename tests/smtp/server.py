"""A real SMTP server for Keyward's tests: aiosmtpd, writing each message it accepts to a
folder as NAME.eml (written to NAME.tmp first, then renamed, so a reader never sees half
a message). Run by Debian's own /usr/bin/python3 (python3-aiosmtpd).

    server.py --port N --folder DIR [--tls starttls|smtps --cert PEM --key PEM]
              [--login USER:PASSWORD]

Recipients whose address starts with "refused" get a 550, as a real server's unknown
mailbox would. Prints READY once it listens, then serves until killed.
"""

import argparse
import os
import ssl
import sys
import threading
import time
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Folder:
    def __init__(self, folder):
        self.folder = folder

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("refused"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = "%020d-%s" % (time.time_ns(), uuid.uuid4().hex)
        partial = os.path.join(self.folder, name + ".tmp")
        with open(partial, "wb") as out:
            out.write(("X-Test-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            auth = getattr(session, "auth_data", None)
            login = auth.login.decode() if isinstance(auth, LoginPassword) else ""
            out.write(("X-Test-Login: %s\r\n" % login).encode())
            out.write(envelope.original_content or envelope.content)
            out.flush()
            os.fsync(out.fileno())
        os.rename(partial, os.path.join(self.folder, name + ".eml"))
        return "250 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--tls", choices=["starttls", "smtps"])
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--login")
    args = parser.parse_args()

    options = {}
    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    if args.tls == "starttls":
        options.update(tls_context=context, require_starttls=True)
    elif args.tls == "smtps":
        options.update(ssl_context=context)
    if args.login:
        user, password = args.login.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            if (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            ):
                return AuthResult(success=True, auth_data=auth_data)
            return AuthResult(success=False, handled=False)

        # Over smtps the whole connection is TLS already.
        options.update(
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=args.tls != "smtps",
        )

    controller = Controller(
        Folder(args.folder),
        hostname="127.0.0.1",
        port=args.port,
        server_hostname="localhost",
        **options,
    )
    controller.start()
    print("READY", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
