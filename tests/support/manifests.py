"""deploy/'s files as data for the tests: the compose file, the Kubernetes objects, the
image's configuration, and the facts they must agree on (ports, paths, the version)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from proxy.config import ENV_PREFIX, Config, load_config, settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose.yaml"
CONTAINER_TOML = DEPLOY / "container.toml"

#: Variables mlproxy reads that are not settings.
OTHER_VARIABLES = frozenset({ENV_PREFIX + "CONFIG"})


def project_version() -> str:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def setting_variables() -> set[str]:
    return {ENV_PREFIX + f.name.upper() for f in settings()}


def variables_named(text: str) -> set[str]:
    """Every MLPROXY_* name in a text."""
    return set(re.findall(r"\b" + ENV_PREFIX + r"[A-Z0-9_]+\b", text))


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


#: The manifest kept out of the kustomization: its placeholders must never be applied over
#: the real secrets.
SECRETS_TEMPLATE = "secret.yaml"


def manifest_files() -> list[Path]:
    return sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


def kubernetes_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object, from every manifest."""
    objects = {}
    for path in manifest_files():
        for doc in load_documents(path):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def kustomization() -> dict[str, Any]:
    return load_documents(KUBERNETES / "kustomization.yaml")[0]


def the_one(kind: str) -> dict[str, Any]:
    found = [obj for (k, _), obj in kubernetes_objects().items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def mlproxy_container() -> dict[str, Any]:
    containers = the_one("Deployment")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "mlproxy")


def configmap_toml() -> str:
    return str(the_one("ConfigMap")["data"]["mlproxy.toml"])


def config_from_toml(text: str, directory: Path, env: dict[str, str] | None = None) -> Config:
    """A Config from TOML text, as `mlproxy serve --config` would load it."""
    path = directory / "mlproxy.toml"
    path.write_text(text, encoding="utf-8")
    return load_config({}, env=env or {}, config_file=str(path))


def compose() -> dict[str, Any]:
    return load_documents(COMPOSE)[0]


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def quantity(value: str | int) -> float:
    """A Kubernetes quantity in bytes ("384Mi") or cores ("500m")."""
    text = str(value)
    factors = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "m": 1e-3, "k": 1e3, "M": 1e6}
    for suffix, factor in factors.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)
