"""The Dockerfile (issue 13, item 3), checked without a Docker engine.

The base image is pinned (a full version tag and a digest), the user is a numeric UID and GID
(Kubernetes ``runAsNonRoot`` can only verify a number) matching the Helm chart's
``securityContext``, and the image's own command, run as it is written, refuses to serve the
demo keys on 0.0.0.0 when no config is mounted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines()
            if line.split(None, 1)[:1] == [name]]


def test_base_images_are_pinned_by_version_and_digest() -> None:
    images = [f.split()[0] for f in _instructions("FROM")]
    assert images, "no FROM"
    for image in images:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+@sha256:[0-9a-f]{64}", image), image
    assert len(set(images)) == 1  # build and runtime stages on the same base


def test_the_user_is_numeric_and_matches_the_chart() -> None:
    (user,) = _instructions("USER")
    uid, _, gid = user.strip().partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0, user
    chart = (ROOT / "deploy/helm/llm-gateway/templates/deployment.yaml").read_text()
    context = yaml.safe_load(re.search(r"securityContext:\n((?:\s{8}.*\n)+)", chart)[1])
    assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid))
    assert f"--uid {uid}" in DOCKERFILE and f"--gid {gid}" in DOCKERFILE
    assert all(f"--chown={uid}:{gid}" in c for c in _instructions("COPY") if "--chown" in c)


def test_the_image_command_refuses_the_demo_keys_without_a_config(tmp_path: Path) -> None:
    (cmd,) = _instructions("CMD")
    argv = json.loads(cmd)
    assert argv[:2] == ["sh", "-c"] and "/etc/gateway/config.yaml" in argv[2]
    assert not Path("/etc/gateway/config.yaml").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # `gateway` as installed
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "GATEWAY_ADMIN_KEY" in proc.stderr and "refusing to serve on 0.0.0.0" in proc.stderr
