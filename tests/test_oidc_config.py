"""The ``oidc:`` section: validation with YAML paths, masked secrets, signed SSO sessions, and the
optional extra (the gateway starts without PyJWT unless single sign-on is configured)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import ConfigError, masked, parse_settings
from gateway.ui.session import SessionCodec, SsoUser, session_secret

ROOT = Path(__file__).resolve().parent.parent


def config(**oidc: Any) -> dict[str, Any]:
    section = {"issuer": "https://login.example.com/realms/acme", "client_id": "gateway",
               "client_secret": "oidc-client-secret-value",
               "redirect_base_url": "https://gateway.example.com/",
               "roles": {"gw-admins": "admin", "search-reviewers": "reviewer:search"}, **oidc}
    return {"server": {"admin_keys": ["sk-admin-key-for-tests"]},
            "teams": [{"name": "search", "keys": ["sk-client-key-1"]}],
            "oidc": {k: v for k, v in section.items() if v is not None}}


def test_a_valid_section_and_its_defaults() -> None:
    s = parse_settings(config()).oidc
    assert s is not None
    assert s.redirect_base_url == "https://gateway.example.com"
    assert s.issuer == "https://login.example.com/realms/acme"
    assert s.scopes == ["openid", "email", "profile"] and s.role_claim == "groups"
    assert s.accepted_audiences == ["gateway"]
    assert s.grant(("staff", "search-reviewers")) == ("reviewer", "search")
    assert s.grant(("search-reviewers", "gw-admins")) == ("admin", None)
    assert s.grant(("staff",)) is None


@pytest.mark.parametrize(("change", "message"), [
    ({"issuer": "http://login.example.com"}, "oidc.issuer: Value error, must be https://"),
    ({"redirect_base_url": "http://gw.example.com"}, "oidc.redirect_base_url: Value error, "
                                                     "must be https://"),
    ({"issuer": "login.example.com"}, "oidc.issuer: Value error, must be an absolute"),
    ({"roles": {"x": "superuser"}}, "'superuser' must be 'admin' or 'reviewer:<team>'"),
    ({"roles": {"x": "reviewer:nobody"}}, "oidc.roles['x']: unknown team 'nobody'"),
    ({"roles": {}}, "oidc.roles: Dictionary should have at least 1 item"),
    ({"scopes": ["email"]}, "oidc.scopes: Value error, must include 'openid'"),
    ({"client_secret": None}, "server.session_secret: required when oidc has no "
                              "client_secret"),
    ({"client_id": None}, "oidc.client_id: Field required"),
    ({"role_mapping": {}}, "oidc.role_mapping: Extra inputs are not permitted"),
])
def test_bad_sections_name_the_path(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_settings(config(**change))
    assert message in str(exc.value)


def test_http_is_allowed_only_on_loopback() -> None:
    for host in ("127.0.0.1:8080", "localhost:9000", "[::1]:9000", "127.0.0.2"):
        s = parse_settings(config(issuer=f"http://{host}", redirect_base_url=f"http://{host}"))
        assert s.oidc is not None
    with pytest.raises(ConfigError, match="allowed only for a loopback host"):
        parse_settings(config(issuer="http://10.0.0.5:8080"))


def test_public_client_needs_a_session_secret() -> None:
    cfg = config(client_secret=None)
    cfg["server"]["session_secret"] = "a-long-random-session-secret"
    assert parse_settings(cfg).oidc is not None


def test_client_secret_is_masked_by_check_config(tmp_path: Path) -> None:
    data = masked(parse_settings(config()))
    assert data["oidc"]["client_secret"] == "***alue"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(client_secret="${OIDC_SECRET}")))
    r = subprocess.run([sys.executable, "-m", "gateway", "check-config", str(path)],
                       capture_output=True, text=True, timeout=120, check=False,
                       env={"OIDC_SECRET": "from-the-environment-9876", "PATH": "/usr/bin"})
    assert r.returncode == 0, r.stderr
    assert "from-the-environment" not in r.stdout and "***9876" in r.stdout


def test_sso_sessions_are_signed_and_expire() -> None:
    settings = parse_settings(config())
    codec = SessionCodec(session_secret(settings))
    value, session = codec.issue_sso(SsoUser("bob@example.com", ("search-reviewers",)), 60,
                                     now=1000.0)
    assert codec.read(value, now=1059.0) == session and session.digest == ""
    assert codec.read(value, now=1061.0) is None
    # The client secret is part of the signing key: a config without it cannot forge sessions.
    other = parse_settings({**config(), "oidc": {**config()["oidc"], "client_secret": "x" * 20}})
    assert SessionCodec(session_secret(other)).read(value, now=1000.0) is None
    plain = parse_settings({"server": {"admin_keys": ["sk-admin-key-for-tests"]},
                            "teams": [{"name": "search", "keys": ["sk-client-key-1"]}]})
    assert session_secret(plain) != session_secret(settings)


BLOCK_JWT = "import sys; sys.modules['jwt'] = None\n"


def run_without_pyjwt(code: str) -> subprocess.CompletedProcess[str]:
    """Python with PyJWT made unimportable, as on an install without the ``oidc`` extra."""
    return subprocess.run([sys.executable, "-c", BLOCK_JWT + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
                          env={"PATH": "/usr/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})


def test_without_the_extra_sso_config_fails_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config()))
    r = run_without_pyjwt(f"""
        from gateway.cli import main
        sys.exit(main(["check-config", {str(path)!r}]))
    """)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "oidc: Value error, single sign-on needs PyJWT" in r.stderr
    assert "install the gateway's 'oidc' extra" in r.stderr


def test_without_the_extra_the_gateway_runs_when_sso_is_not_configured(tmp_path: Path) -> None:
    r = run_without_pyjwt(f"""
        from starlette.testclient import TestClient
        from gateway.app import create_app
        from gateway.settings import parse_settings
        app = create_app(parse_settings({{
            "server": {{"admin_keys": ["sk-admin-key-for-tests"]}},
            "stores": {{"logs": "sqlite:///{tmp_path}/gw.db"}}}}))
        with TestClient(app) as c:
            assert c.get("/ui/login").status_code == 200
            assert "Sign in with" not in c.get("/ui/login").text
            r = c.get("/admin/flags", headers={{"authorization": "Bearer sk-admin-key-for-tests"}})
            assert r.status_code == 200, r.text
        assert "gateway.oidc" not in sys.modules
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
