#!/bin/sh
# Test prerequisites outside the venv, installed only when missing; safe to run again.
# Today: Debian's chromium for the Playwright browser tests (Playwright's own browser download
# is not used, so the tests run offline). Without root or apt-get it only says what is missing,
# and those tests skip (or fail under CI=true).
set -eu

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "prepare: chromium present ($CHROMIUM)"
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "prepare: installing Debian's chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    echo "prepare: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
    echo "prepare: $CHROMIUM is missing and cannot be installed here (needs root and apt-get);" \
         "the browser tests will be skipped"
fi
