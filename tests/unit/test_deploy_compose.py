"""deploy/compose.yaml and deploy/prometheus.yml read as data (issue 14): the services the
walk-through in docs/operations.md needs, MariaDB seeded with exactly what `mlproxy demo` loads, the
churn endpoint routed to the example's model server, mlproxy built from the Dockerfile
with the ports it exposes, Prometheus scraping the real metrics path and port."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from proxy.cli.demo import DEFAULT_EXAMPLES, table_scripts
from proxy.config import endpoint_routes, load_config, parse_backend_url
from proxy.ops.endpoint import METRICS_PATH
from tests.support import dockerfile as df
from tests.support.manifests import (
    COMPOSE,
    CONTAINER_TOML,
    DEPLOY,
    ROOT,
    compose,
    load_documents,
    project_version,
)

INIT_FOLDER = "/docker-entrypoint-initdb.d/"


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def mlproxy_environment() -> dict[str, str]:
    return {k: str(v) for k, v in service("mlproxy")["environment"].items()}


def image_config_with_compose_env() -> Any:
    """The Config mlproxy runs with under compose: the image's file, compose's variables."""
    return load_config({}, env=mlproxy_environment(), config_file=str(CONTAINER_TOML))


def host_path(volume: str) -> tuple[Path, str]:
    """``../examples/x.sql:/target:ro`` -> (the file in the checkout, /target)."""
    source, target = volume.split(":")[:2]
    return (COMPOSE.parent / source).resolve(), target


def test_the_services_of_the_walk_through() -> None:
    assert set(compose()["services"]) == {
        "mariadb",
        "churn-model",
        "redis",
        "mlproxy",
        "prometheus",
    }


def test_mariadb_is_seeded_with_what_the_demo_loads() -> None:
    seeds = sorted(
        (target, source)
        for source, target in map(host_path, service("mariadb")["volumes"])
        if target.startswith(INIT_FOLDER)
    )
    assert [source for _, source in seeds] == table_scripts(DEFAULT_EXAMPLES)
    assert all(target.endswith(".sql") for target, _ in seeds)


def test_the_backend_account_is_the_one_mariadb_creates() -> None:
    url = parse_backend_url(mlproxy_environment()["MLPROXY_BACKEND"])
    env = service("mariadb")["environment"]
    assert (url.address.host, url.address.port) == ("mariadb", 3306)
    assert (url.user, url.password, url.database) == (
        env["MARIADB_USER"],
        env["MARIADB_PASSWORD"],
        env["MARIADB_DATABASE"],
    )


def test_the_churn_endpoint_goes_to_the_example_model_server() -> None:
    churn_sql = (ROOT / "examples" / "queries" / "churn.sql").read_text(encoding="utf-8")
    [name] = set(re.findall(r"endpoint name '([^']+)'", churn_sql, flags=re.IGNORECASE))
    target = endpoint_routes(image_config_with_compose_env())[name]
    model = service("churn-model")
    command = model["command"]
    assert command[:3] == ["python", "-m", "examples.churn.server"]
    port = command[command.index("--port") + 1]
    assert target == f"http://churn-model:{port}"
    # The Python the image and the install test run (examples/ needs nothing else).
    assert model["image"] == df.parse_dockerfile(df.DOCKERFILE.read_text())[-1].image
    source, where = host_path(model["volumes"][0])
    assert source == ROOT / "examples" and where == f"{model['working_dir']}/examples"


def test_mlproxy_is_built_from_the_dockerfile_with_its_ports() -> None:
    proxy = service("mlproxy")
    build = proxy["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == df.DOCKERFILE
    assert proxy["image"] == f"mlproxy:{project_version()}"
    config = image_config_with_compose_env()
    published = {int(port.rpartition(":")[2]) for port in proxy["ports"]}
    assert config.metrics_address is not None
    assert published == {config.listen_address[1], config.metrics_address[1]}
    exposed = df.parse_dockerfile(df.DOCKERFILE.read_text(encoding="utf-8"))[-1].last("EXPOSE")
    assert published == {int(p) for p in exposed.split()}
    # Published on the host's loopback only: the demo account's password is public.
    assert all(port.startswith("127.0.0.1:") for port in proxy["ports"])


def test_mlproxy_starts_after_its_dependencies_and_stops_gracefully() -> None:
    proxy = service("mlproxy")
    assert {name: d["condition"] for name, d in proxy["depends_on"].items()} == {
        "mariadb": "service_healthy",
        "churn-model": "service_healthy",
        "redis": "service_healthy",
    }
    grace = int(proxy["stop_grace_period"].removesuffix("s"))
    assert grace > image_config_with_compose_env().shutdown_timeout


def test_the_shared_cache_is_the_compose_redis() -> None:
    url = mlproxy_environment()["MLPROXY_ML_CACHE"]
    assert re.fullmatch(r"redis://redis:6379/\d+", url)
    assert "redis" in compose()["services"]


def test_prometheus_scrapes_the_metrics_path_and_port() -> None:
    [job] = load_documents(DEPLOY / "prometheus.yml")[0]["scrape_configs"]
    assert job["metrics_path"] == METRICS_PATH
    config = image_config_with_compose_env()
    assert config.metrics_address is not None
    assert job["static_configs"][0]["targets"] == [f"mlproxy:{config.metrics_address[1]}"]
    source, target = host_path(service("prometheus")["volumes"][0])
    assert source == DEPLOY / "prometheus.yml" and target == "/etc/prometheus/prometheus.yml"


def test_healthchecks_are_exec_form_commands() -> None:
    for name in ("mariadb", "churn-model", "redis"):
        test = service(name)["healthcheck"]["test"]
        assert test[0] == "CMD", name
    assert "/ping" in service("churn-model")["healthcheck"]["test"][-1]
