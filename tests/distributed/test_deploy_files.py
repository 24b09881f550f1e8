"""The compose file and the Kubernetes manifests, checked against the code.

Neither Docker nor a cluster runs here, so this checks what can be checked without
them: every file parses; every command is a ``sentimon`` subcommand with the options
given; every ``SENTIMON_*`` variable is a field of that service's settings class and
its value is valid there; the ports the containers, services and probes use are the
ones the settings make the process listen on; probe paths are routes of that
process's app; every Sentimon container runs the one image the Dockerfile builds.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import click
import pytest
import yaml
from pydantic_settings import BaseSettings
from sqlalchemy import create_engine

from services.api.settings import ApiSettings
from services.api.state import AppState
from services.cli import main as cli
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.settings import CommonSettings
from services.core.storage.brands import BrandStore
from services.core.storage.keys import KeyStore
from services.ingest.settings import IngestProcessSettings
from services.runtime.probes import Probes
from services.scorer.settings import ScorerProcessSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
DOCKERFILE = REPO / "deploy" / "compose" / "Dockerfile"
K8S = REPO / "deploy" / "k8s"

SETTINGS: dict[str, type[CommonSettings]] = {
    "api": ApiSettings,
    "ingest": IngestProcessSettings,
    "scorer": ScorerProcessSettings,
    "migrate": CommonSettings,
}
# The setting holding the port each long-running service listens on.
PORT_FIELD = {"api": "port", "ingest": "ingest_port", "scorer": "scorer_port"}


def serves(command: str, path: str) -> bool:
    """Whether the process started by ``sentimon <command>`` has a route at ``path``."""
    from prometheus_client import CollectorRegistry
    from starlette.testclient import TestClient

    engine = create_engine("sqlite://")
    clock = SystemClock()
    state = AppState(
        settings=ApiSettings(),
        engine=engine,
        clock=clock,
        metrics=Metrics(CollectorRegistry()),
        keys=KeyStore(engine, clock),
        brands=BrandStore(engine, clock),
    )
    if command == "api":
        from services.api.app import create_app

        app = create_app(state)
    elif command == "ingest":
        from services.ingest.http import PushEndpoint
        from services.ingest.main import create_ingest_app

        endpoint = PushEndpoint(cast(Any, None), state.keys, state.metrics, 1 << 20, 100)
        app = create_ingest_app(Probes(engine, state.metrics), endpoint)
    else:
        from services.scorer.main import create_probe_app

        app = create_probe_app(
            ScorerProcessSettings(),
            engine,
            state.metrics,
            cast(Any, SimpleNamespace(loops=(), progress_problem=lambda: None)),
        )
    with TestClient(app) as client:
        return client.get(path).status_code != 404


def settings_from_env(
    command: str,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    shared: frozenset[str] = frozenset(),
) -> BaseSettings:
    """The service's settings as the process would build them from ``env``; fails on a
    variable that is no setting of it (of any service, for the ``shared`` ones every
    service is given), or on a value it refuses."""
    cls = SETTINGS[command]
    everyone = set().union(*(c.model_fields for c in SETTINGS.values()))
    for name in env:
        assert name.startswith("SENTIMON_"), f"{command}: {name} is not a Sentimon setting"
        field = name.removeprefix("SENTIMON_").lower()
        if name in shared:
            assert field in everyone, f"{name} is no setting of any service"
        else:
            assert field in cls.model_fields, f"{command}: {name} is no setting of {cls.__name__}"
    with monkeypatch.context() as m:
        for k in [k for k in os.environ if k.startswith("SENTIMON_")]:
            m.delenv(k)
        for k, v in env.items():
            m.setenv(k, str(v))
        return cls()


def check_command(args: list[str]) -> str:
    """``args`` is a valid ``sentimon`` command line; returns the subcommand."""
    assert args, "no command"
    name = args[0]
    command = cli.commands.get(name) if isinstance(cli, click.Group) else None
    assert command is not None, f"sentimon has no subcommand {name!r}"
    # Parsing the arguments proves every option exists and every value is accepted.
    with command.make_context(name, list(args[1:]), resilient_parsing=False) as ctx:
        assert ctx.command is command
    return name


def image_name() -> str:
    text = DOCKERFILE.read_text()
    assert re.search(r'^ENTRYPOINT \["sentimon"\]', text, re.M), "the image runs `sentimon`"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "sentimon" in scripts
    tag = re.search(r"-t (\S+) \.", text)
    assert tag is not None, "the Dockerfile says how it is tagged"
    return tag.group(1)


# --- compose ---------------------------------------------------------------------------


def test_compose_services_match_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    services: dict[str, Any] = doc["services"]
    image = image_name()
    seen: set[str] = set()
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        if svc.get("image", "").split(":")[0] != "sentimon":
            continue
        assert svc["image"] == image, f"{name}: image {svc['image']} is not {image}"
        assert svc["build"]["dockerfile"] == str(DOCKERFILE.relative_to(REPO))
        assert (COMPOSE.parent / svc["build"]["context"]).resolve() == REPO
        command = check_command(svc["command"])
        seen.add(command)
        shared = frozenset(doc["x-sentimon"]["environment"])
        settings = settings_from_env(
            command, svc.get("environment", {}), monkeypatch, shared=shared
        )
        if command not in PORT_FIELD:
            continue
        port = getattr(settings, PORT_FIELD[command])
        host = getattr(settings, PORT_FIELD[command].replace("port", "host"))
        assert host == "0.0.0.0", f"{name} must listen beyond its container"  # noqa: S104
        for mapping in svc.get("ports", []):
            assert int(str(mapping).rsplit(":", 1)[1]) == port, f"{name}: port {mapping}"
        probe = " ".join(svc["healthcheck"]["test"])
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", probe)
        assert url is not None, f"{name}: the healthcheck asks no URL"
        assert int(url.group(1)) == port, f"{name}: healthcheck port {url.group(1)} != {port}"
        assert serves(command, url.group(2)), f"{name}: no route {url.group(2)}"
    assert seen == {"migrate", "ingest", "scorer", "api"}
    assert services["scorer"]["deploy"]["replicas"] >= 2


# --- Kubernetes ------------------------------------------------------------------------


def k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        path = K8S / resource
        assert path.is_file(), f"kustomization lists missing {resource}"
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    listed = {K8S / r for r in kustomization["resources"]}
    unlisted = {p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"} - listed
    assert not unlisted, f"manifests not in the kustomization: {unlisted}"
    return docs


def env_of(
    container: dict[str, Any], docs: list[dict[str, Any]]
) -> tuple[dict[str, str], frozenset[str]]:
    """The container's environment, and which of it comes from shared config."""
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_name[("ConfigMap", source["configMapRef"]["name"])]["data"])
        else:
            env.update(by_name[("Secret", source["secretRef"]["name"])]["stringData"])
    shared = frozenset(env)
    for item in container.get("env", []):
        env[item["name"]] = item["value"]
    return env, shared - {item["name"] for item in container.get("env", [])}


def test_kubernetes_manifests_match_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = k8s_documents()
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert f"{image['name']}:{image['newTag']}" == image_name()
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    commands: set[str] = set()
    for dep in deployments:
        spec = dep["spec"]
        pod = spec["template"]
        assert spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        init = pod["spec"].get("initContainers", [])
        assert [check_command(c["args"]) for c in init] == ["migrate"], "prestart migrate"
        for c in init + pod["spec"]["containers"]:
            assert c["image"] == image["name"]
            env, shared = env_of(c, docs)
            settings_from_env(c["args"][0], env, monkeypatch, shared=shared)
        (container,) = pod["spec"]["containers"]
        command = check_command(container["args"])
        commands.add(command)
        env, shared = env_of(container, docs)
        settings = settings_from_env(command, env, monkeypatch, shared=shared)
        port = getattr(settings, PORT_FIELD[command])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert list(ports.values()) == [port], f"{command}: containerPort is not {port}"
        for probe in ("livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["port"] in ports, f"{command}: {probe} names no port"
            assert serves(command, get["path"]), f"{command}: no route {get['path']}"
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        timeout = getattr(settings, "shutdown_timeout_s", 30.0)
        assert grace > timeout, f"{command}: killed before its graceful stop can finish"
        for svc in (d for d in docs if d["kind"] == "Service"):
            if svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items():
                for p in svc["spec"]["ports"]:
                    assert p["targetPort"] in ports, f"service {svc['metadata']['name']}"
    assert commands == {"ingest", "scorer", "api"}
