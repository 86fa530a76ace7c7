#!/bin/sh
# Install the Debian packages the tests and the extractors use, when missing:
#   dovecot-imapd  the IMAP server the tests start on 127.0.0.1
#   s-nail         a real mail client the tests compose messages with
#   antiword       reads legacy Word (.doc) files
#   poppler-utils  pdftotext/pdftoppm: the PDF benchmark baseline and page images for OCR
#   tesseract-ocr  OCR of scanned pages (English and Welsh language data)
#   chromium       the real browser the web view tests drive
set -eu
PACKAGES="dovecot-imapd s-nail antiword poppler-utils tesseract-ocr tesseract-ocr-eng tesseract-ocr-cym chromium"
missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "Missing Debian packages:$missing. Install them as root: apt-get install$missing" >&2
        exit 1
    fi
else
    SUDO=""
fi
echo "Installing Debian packages:$missing" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# policy-rc.d stops the package from starting a system-wide Dovecot; the tests run their own.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
