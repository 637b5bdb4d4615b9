"""deploy/kubernetes/ read as data (issue 14): the objects a production install needs, the
probes on the operations endpoint's real paths and port, a termination that lets the load
balancer drain and statements finish, a ConfigMap that loads into a valid Config with every
file it names mounted, the image and its user as the Dockerfile builds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxy.config import Config, read_users_file
from proxy.ops.endpoint import HEALTH_PATH, READY_PATH
from tests.support import dockerfile as df
from tests.support.manifests import (
    KUBERNETES,
    SECRETS_TEMPLATE,
    config_from_toml,
    configmap_toml,
    kubernetes_objects,
    kustomization,
    load_documents,
    manifest_files,
    mlproxy_container,
    project_version,
    quantity,
    the_one,
)

POD_LABELS = {"app.kubernetes.io/name": "mlproxy"}
KINDS = {
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = the_one("Deployment")["spec"]["template"]["spec"]
    return spec


def config(tmp_path: Path) -> Config:
    return config_from_toml(configmap_toml(), tmp_path)


def ports() -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in mlproxy_container()["ports"]}


def test_the_kustomization_lists_every_manifest_but_the_secrets_template() -> None:
    files = {p.name for p in manifest_files()}
    assert set(kustomization()["resources"]) == files - {SECRETS_TEMPLATE}
    kinds = {doc["kind"] for doc in load_documents(KUBERNETES / SECRETS_TEMPLATE)}
    assert kinds == {"Secret"}


def test_the_objects_a_production_install_needs() -> None:
    objects = kubernetes_objects()
    assert {kind for kind, _ in objects} == set(KINDS)
    for (kind, name), obj in objects.items():
        assert obj["apiVersion"] == KINDS[kind], (kind, name)
        assert obj["metadata"]["labels"] == POD_LABELS, (kind, name)


def test_every_selector_picks_the_deployments_pods() -> None:
    deployment = the_one("Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"] == POD_LABELS
    assert deployment["spec"]["selector"]["matchLabels"] == POD_LABELS
    assert the_one("Service")["spec"]["selector"] == POD_LABELS
    assert the_one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == POD_LABELS
    target = the_one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_probes_ask_the_real_paths_on_the_metrics_port(tmp_path: Path) -> None:
    container = mlproxy_container()
    metrics_port = config(tmp_path).metrics_address
    assert metrics_port is not None and ports()["metrics"] == metrics_port[1]
    expected = {"readinessProbe": READY_PATH, "livenessProbe": HEALTH_PATH}
    expected["startupProbe"] = HEALTH_PATH
    for probe, path in expected.items():
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe
    annotations = the_one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports()["metrics"])


def test_ports_agree_with_the_settings_and_the_image(tmp_path: Path) -> None:
    assert ports()["mysql"] == config(tmp_path).listen_address[1]
    exposed = df.parse_dockerfile(df.DOCKERFILE.read_text(encoding="utf-8"))[-1].last("EXPOSE")
    assert set(ports().values()) == {int(p) for p in exposed.split()}
    service_ports = the_one("Service")["spec"]["ports"]
    assert [p["targetPort"] for p in service_ports] == ["mysql"]
    assert service_ports[0]["port"] == 3306  # what MySQL clients expect


def test_the_image_is_the_one_the_dockerfile_builds_at_this_version() -> None:
    image = mlproxy_container()["image"]
    name, _, tag = image.partition(":")
    assert tag == project_version()
    [entry] = kustomization()["images"]
    assert entry["name"] == name and entry["newTag"] == project_version()


def test_termination_drains_then_lets_statements_finish(tmp_path: Path) -> None:
    """preStop waits while the pod leaves the Service's endpoints; then SIGTERM; the
    grace period must cover the wait and shutdown_timeout."""
    command = mlproxy_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and int(command[1]) >= 5
    grace = pod_spec()["terminationGracePeriodSeconds"]
    assert grace > int(command[1]) + config(tmp_path).shutdown_timeout


def test_the_configmap_is_a_valid_config_with_every_file_it_names_mounted(
    tmp_path: Path,
) -> None:
    loaded = config(tmp_path)
    assert loaded.backend and loaded.require_tls and loaded.log_format == "json"
    files = [loaded.tls_cert, loaded.tls_key, loaded.users_file, loaded.backend_tls_ca]
    mounted = mounted_files()
    for path in filter(None, files):
        assert path in mounted, path
    assert mounted["/etc/mlproxy/mlproxy.toml"] == ("configMap", "mlproxy-config")


def mounted_files() -> dict[str, tuple[str, str]]:
    """Every file the projected volumes put in the container: path -> (source kind, name)."""
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    found = {}
    for mount in mlproxy_container()["volumeMounts"]:
        projected = volumes[mount["name"]].get("projected")
        for source in projected["sources"] if projected else []:
            [(kind, ref)] = source.items()
            for item in ref["items"]:
                found[f"{mount['mountPath']}/{item['path']}"] = (kind, ref["name"])
    return found


def test_the_secrets_are_templates_the_proxy_can_read(tmp_path: Path) -> None:
    objects = kubernetes_objects()
    tls = objects[("Secret", "mlproxy-tls")]
    assert tls["type"] == "kubernetes.io/tls"
    assert set(tls["stringData"]) == {"tls.crt", "tls.key"}
    assert all("REPLACE" in value for value in tls["stringData"].values())
    users = tmp_path / "users.toml"
    users.write_text(objects[("Secret", "mlproxy-users")]["stringData"]["users.toml"])
    assert read_users_file(str(users)) == {}  # a template: no account in it
    kinds = {"configMap": "ConfigMap", "secret": "Secret"}
    for kind, name in mounted_files().values():
        assert (kinds[kind], name) in objects


def test_it_runs_unprivileged_on_a_read_only_root() -> None:
    user = df.parse_dockerfile(df.DOCKERFILE.read_text(encoding="utf-8"))[-1].last("USER")
    pod = pod_spec()["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert f"{pod['runAsUser']}:{pod['runAsGroup']}" == user
    container = mlproxy_container()["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    # ... with a writable /tmp, the one place mlproxy writes (tempfile).
    tmp = next(m for m in mlproxy_container()["volumeMounts"] if m["mountPath"] == "/tmp")
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert "emptyDir" in volumes[tmp["name"]]
    assert pod_spec()["automountServiceAccountToken"] is False


def test_resources_leave_room_for_the_memory_settings(tmp_path: Path) -> None:
    resources = mlproxy_container()["resources"]
    assert quantity(resources["requests"]["cpu"]) > 0
    assert quantity(resources["requests"]["memory"]) > 0
    loaded = config(tmp_path)
    assert quantity(resources["limits"]["memory"]) > loaded.ml_memory + loaded.ml_cache_memory


def test_quantities_are_read_as_kubernetes_writes_them() -> None:
    assert quantity("384Mi") == 384 << 20 and quantity("1Gi") == 1 << 30
    assert quantity("500m") == 0.5 and quantity(2) == 2.0


def test_disruptions_and_scaling_keep_a_replica_serving() -> None:
    assert the_one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    hpa = the_one("HorizontalPodAutoscaler")["spec"]
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    deployment = the_one("Deployment")["spec"]
    assert "replicas" not in deployment  # the autoscaler's to set, not every apply's
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
