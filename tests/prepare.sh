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

# The single sign-on tests run a real OpenID provider (npm's oidc-provider) under Node 20+,
# installed into tests/oidc/node_modules from its lock file. The tests do this themselves when
# needed; doing it here keeps the download out of the timed test run.
IDP_DIR="$(dirname "$0")/oidc"
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "prepare: installing Debian's nodejs and npm for the single sign-on tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ -f "$IDP_DIR/node_modules/oidc-provider/package.json" ]; then
    echo "prepare: test IdP packages present (tests/oidc/node_modules)"
elif command -v npm >/dev/null 2>&1; then
    echo "prepare: installing the test IdP's npm packages (tests/oidc, npm ci)"
    (cd "$IDP_DIR" && npm ci --no-audit --no-fund --loglevel=error) \
        || echo "prepare: npm ci failed; the single sign-on tests will say why"
else
    echo "prepare: node/npm missing; the single sign-on tests will be skipped"
fi
