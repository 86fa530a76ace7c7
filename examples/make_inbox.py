"""Write the demo inbox (examples/inbox, a Maildir) from the test documents.

Run from the repository root: python examples/make_inbox.py. The result is
committed; this script shows how it was made and can make it again.
"""

from __future__ import annotations

import mailbox
import shutil
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "tests" / "data" / "docs"
INBOX = ROOT / "examples" / "inbox"

TYPES = {
    ".pdf": ("application", "pdf"),
    ".docx": ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".odt": ("application", "vnd.oasis.opendocument.text"),
}

MESSAGES = [
    ("\"Jane Smith, Anytown Borough Council\" <jane.smith@anytown.gov.uk>", "Keep it Local: response from Anytown Borough Council",
     "Tue, 24 Jul 2018 14:02:11 +0100", "Dear Locality,\n\nPlease find attached our council's response.\n\nJane Smith\nHead of Commissioning",
     [("plain.pdf", "Anytown response.pdf")], {}),
    ("Riverside Community Trust <info@riverside-trust.org.uk>", "Evidence: community organisations transform lives",
     "Thu, 26 Jul 2018 09:15:40 +0100", "Hello,\n\nOur evidence on the role of local community organisations is attached.\n",
     [("features.docx", "Riverside evidence.docx")], {"Reply-To": "policy@riverside-trust.org.uk"}),
    ("Hillside Housing Co-operative <hello@hillside.coop>", "Our response on scale fail",
     "Fri, 27 Jul 2018 17:45:00 +0100", "Please see our examples of scale fail, attached as an OpenDocument file.",
     [("housing.odt", "scale-fail-examples.odt")], {}),
    ("Sam Patel <sam.patel@example.com>", "Keep it Local",
     "Fri, 27 Jul 2018 23:30:12 +0100",
     "Hi,\n\nI volunteer at our town's lunch club, which the council used to fund through a "
     "national contract. Since a local charity took it over, twice as many people come.\n\nSam",
     [], {}),
    ("Northtown Voluntary Action <office@northtown-va.org.uk>", "Late response - apologies",
     "Sat, 28 Jul 2018 08:05:00 +0100", "Apologies for missing the deadline; our response is attached.",
     [("table.pdf", "Northtown response.pdf")], {}),
    ("Eastfield Parish Council <clerk@eastfield-pc.gov.uk>", "Response and scanned letter",
     "Thu, 26 Jul 2018 12:00:00 +0100", "Our clerk's scanned letter and our protected annex are attached.",
     [("scanned.pdf", "letter-scan.pdf"), ("user_password.pdf", "annex (protected).pdf")], {}),
    ("Alex Morgan <alex.morgan@anytown.gov.uk>", "Automatic reply: Keep it Local",
     "Thu, 26 Jul 2018 09:16:02 +0100", "I am out of the office until 6 August.", [],
     {"Auto-Submitted": "auto-replied"}),
]


def received(date: str) -> str:
    return f"from mail.example.net by mx.keepitlocal.example.org; {date}"


def main() -> None:
    shutil.rmtree(INBOX, ignore_errors=True)
    box = mailbox.Maildir(INBOX, create=True)
    for n, (sender, subject, date, body, files, headers) in enumerate(MESSAGES, start=1):
        message = EmailMessage()
        message["Received"] = received(date)
        message["From"] = sender
        message["To"] = "Keep it Local <keepitlocal@example.org>"
        message["Subject"] = subject
        message["Date"] = date
        message["Message-ID"] = f"<demo-{n}@example.net>"
        for name, value in headers.items():
            message[name] = value
        message.set_content(body)
        for source, filename in files:
            maintype, subtype = TYPES[Path(source).suffix]
            message.add_attachment((DOCS / source).read_bytes(), maintype=maintype, subtype=subtype,
                                   filename=filename)
        box.add(message.as_bytes())
    for sub in ("cur", "new", "tmp"):
        (INBOX / sub / ".keep").touch()


if __name__ == "__main__":
    main()
