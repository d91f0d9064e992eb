#!/bin/sh
# Test prerequisites outside the venv, installed only when missing; safe to run again.
# - Debian's chromium, for the Playwright browser tests (Playwright's own browser download is
#   not used, so the tests run offline);
# - Debian's haproxy, for tests/topology and `haproxy -c` in deploy/check.py;
# - Debian's prometheus, for promtool in deploy/check.py (its daemon is not started).
# Without root or apt-get it only says what is missing, and those tests skip (or fail under
# CI=true).
set -eu

CHROMIUM=/usr/bin/chromium
MISSING=""
[ -x "$CHROMIUM" ] || MISSING="$MISSING chromium"
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || MISSING="$MISSING haproxy"
command -v promtool >/dev/null 2>&1 || MISSING="$MISSING prometheus"

if [ -z "$MISSING" ]; then
    echo "prepare: chromium, haproxy and promtool present"
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "prepare: installing Debian's$MISSING for the tests"
    # Packages with a daemon (haproxy, prometheus) must not start it here: without a
    # policy-rc.d of the image's own, a temporary one forbids starting services.
    OWN_POLICY=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        OWN_POLICY=1
    fi
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $MISSING >/dev/null
    [ -z "$OWN_POLICY" ] || rm -f /usr/sbin/policy-rc.d
    echo "prepare: installed$MISSING"
else
    echo "prepare:$MISSING missing and cannot be installed here (needs root and apt-get);" \
         "the tests that need them will be skipped"
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
