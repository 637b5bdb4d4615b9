"""deploy/Dockerfile without a container engine (issue 14): hadolint and shellcheck pass,
and the image is built as promised: two stages, a slim runtime with no compilers, a
numeric unprivileged user, exec-form commands, the ports and the health check that the
settings and the operations endpoint really have, a build context with nothing but the
package. tests/integration/test_image_install.py runs what the image runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from proxy.config import Config, load_config, parse_host_port
from proxy.ops.endpoint import HEALTH_PATH
from tests.support import dockerfile as df
from tests.support.manifests import (
    CONTAINER_TOML,
    DEPLOY,
    OTHER_VARIABLES,
    ROOT,
    port_of,
    project_version,
    setting_variables,
    variables_named,
)

BIN = Path(sys.executable).parent
IMAGE_CONFIG = "/etc/mlproxy/mlproxy.toml"


def stages() -> list[df.Stage]:
    return df.parse_dockerfile(df.DOCKERFILE.read_text(encoding="utf-8"))


def runtime() -> df.Stage:
    return stages()[-1]


def image_config() -> Config:
    return load_config({}, env={}, config_file=str(CONTAINER_TOML))


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "style", str(df.DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_would_find_a_shell_form_command(tmp_path: Path) -> None:
    """The lint can fail: the same file with CMD in shell form (sh as PID 1) does."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        df.DOCKERFILE.read_text(encoding="utf-8").replace('CMD ["serve"]', "CMD mlproxy serve"),
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(bad)], capture_output=True, text=True
    )
    assert done.returncode != 0 and "DL3025" in done.stdout


def test_shellcheck_finds_nothing_in_the_install_script() -> None:
    done = subprocess.run(
        [str(BIN / "shellcheck"), "--shell=sh", str(DEPLOY / "install.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_two_stages_both_installing_through_the_one_script() -> None:
    build, final = stages()
    assert build.name == "build" and final.name is None
    assert build.arguments("COPY") == [". ."]
    assert build.arguments("RUN") == ["sh deploy/install.sh wheels /src /wheels"]
    installs = [run for run in final.arguments("RUN") if "install.sh" in run]
    assert len(installs) == 1
    _, command = df.split_options(installs[0])
    script = {m["target"]: m for m in df.mounts(installs[0])}
    assert shlex.split(command)[:2] == ["sh", next(t for t in script if t.endswith(".sh"))]
    assert shlex.split(command)[2:] == ["venv", "/wheels", "/opt/mlproxy"]
    # The wheels come from the build stage for that one step, never copied into a layer.
    assert script["/wheels"] == {
        "type": "bind",
        "from": "build",
        "source": "/wheels",
        "target": "/wheels",
    }
    assert not any("--from" in copy for copy in final.arguments("COPY"))


def test_the_runtime_is_slim_and_has_no_compilers() -> None:
    final = runtime()
    assert re.fullmatch(r"python:\d+\.\d+-slim-\w+", final.image), final.image
    text = " ".join(final.arguments("RUN"))
    for forbidden in ("apt-get", "apk ", "gcc", "build-essential", "pip install", "curl"):
        assert forbidden not in text, forbidden


def test_the_image_python_is_the_one_ci_tests_the_install_with() -> None:
    """The install test runs this interpreter's version; the image must run the same."""
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim-\w+", runtime().image)
    assert match is not None
    assert (int(match[1]), int(match[2])) == sys.version_info[:2], (
        "the install test runs this Python, the image another: change the Dockerfile's "
        "PYTHON_IMAGE (and compose's churn-model image) with the Python CI runs"
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == ">=3.11" and int(match[2]) >= 11


def test_it_runs_as_a_numeric_unprivileged_user() -> None:
    final = runtime()
    user, _, group = final.last("USER").partition(":")
    assert user.isdigit() and group.isdigit() and int(user) > 0 and int(group) > 0
    accounts = " ".join(final.arguments("RUN"))
    assert f"--uid {user}" in accounts and f"--gid {group}" in accounts


def test_pid_1_is_mlproxy_in_exec_form_stopped_by_sigterm() -> None:
    final = runtime()
    assert df.exec_form(final.last("ENTRYPOINT")) == ["mlproxy"]
    assert df.exec_form(final.last("CMD")) == ["serve"]
    assert final.last("STOPSIGNAL") == "SIGTERM"


def test_the_health_check_asks_the_real_health_path() -> None:
    options, command = df.split_options(runtime().last("HEALTHCHECK"))
    keyword, _, rest = command.partition(" ")
    assert keyword == "CMD"
    assert df.exec_form(rest) == ["python", "-m", "proxy.ops.healthcheck", HEALTH_PATH]
    assert set(options) >= {"interval", "timeout", "start-period", "retries"}


def test_exposed_ports_are_the_listen_and_metrics_ports() -> None:
    config = image_config()
    exposed = {int(port) for port in runtime().last("EXPOSE").split()}
    assert config.metrics_address is not None
    assert exposed == {config.listen_address[1], config.metrics_address[1]}
    # The image listens on the port the setting defaults to, on every address.
    assert config.listen_address == ("0.0.0.0", port_of(Config.listen))


def test_the_image_configuration_is_where_the_image_looks_for_it() -> None:
    final = runtime()
    assert f"deploy/container.toml {IMAGE_CONFIG}" in final.arguments("COPY")
    env = df.environment(final, {"PATH": "/usr/bin"})
    assert env["MLPROXY_CONFIG"] == IMAGE_CONFIG
    assert env["PATH"].split(":")[0] == "/opt/mlproxy/bin"
    config = image_config()
    assert config.log_format == "json" and config.backend is None
    assert parse_host_port(config.metrics_listen or "", "metrics_listen")[0] == "0.0.0.0"


def test_the_build_context_is_the_package_and_nothing_else() -> None:
    files = df.context_files()
    for package in ("proxy", "rewriter", "ml_backends"):
        sources = sorted(
            str(p.relative_to(ROOT))
            for p in (ROOT / package).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )
        assert sources and set(sources) <= set(files), package
    assert {"pyproject.toml", "README.md", "deploy/install.sh", "deploy/container.toml"} <= set(
        files
    )
    tops = {f.split("/")[0] for f in files}
    assert tops == {"pyproject.toml", "README.md", "proxy", "rewriter", "ml_backends", "deploy"}
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


@pytest.mark.parametrize(
    ("path", "is_excluded"),
    [
        ("tests/conftest.py", True),
        ("proxy/server.py", False),
        ("proxy/__pycache__/server.cpython-311.pyc", True),
        ("deploy/install.sh", False),
        ("deploy/compose.yaml", True),
        ("README.md", False),
        (".git/HEAD", True),
    ],
)
def test_dockerignore_rules_as_docker_reads_them(path: str, is_excluded: bool) -> None:
    rules = df.ignore_rules(df.DOCKERIGNORE.read_text(encoding="utf-8"))
    assert df.excluded(path, rules) is is_excluded


def test_the_last_matching_ignore_rule_decides() -> None:
    rules = df.ignore_rules("docs\n!docs/keep.md\n**/*.tmp\n")
    assert df.excluded("docs/a.md", rules)
    assert not df.excluded("docs/keep.md", rules)
    assert df.excluded("x/y/z.tmp", rules) and df.excluded("z.tmp", rules)
    assert not df.excluded("other.md", rules)


def test_every_mlproxy_variable_in_deploy_is_a_setting() -> None:
    named: set[str] = set()
    for path in [*DEPLOY.rglob("*"), ROOT / ".dockerignore"]:
        if path.is_file():
            named |= variables_named(path.read_text(encoding="utf-8"))
    assert "MLPROXY_BACKEND" in named  # the scan finds them
    unknown = named - setting_variables() - OTHER_VARIABLES
    assert not unknown, f"not settings: {sorted(unknown)}"


def test_variables_are_found_in_any_text() -> None:
    text = "MLPROXY_BACKEND: x\n  ${MLPROXY_LISTEN} mlproxy_lower XMLPROXY_NO"
    assert variables_named(text) == {"MLPROXY_BACKEND", "MLPROXY_LISTEN"}


def test_every_deploy_file_the_docs_name_exists() -> None:
    docs = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    text = "".join(path.read_text(encoding="utf-8") for path in docs)
    named = set(re.findall(r"\bdeploy/[\w./-]*\w", text))
    assert {"deploy/Dockerfile", "deploy/compose.yaml", "deploy/kubernetes"} <= named
    assert not [path for path in named if not (ROOT / path).exists()]


def test_every_image_tag_is_the_project_version() -> None:
    texts = [
        p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    ]
    texts += [p.read_text(encoding="utf-8") for p in DEPLOY.rglob("*") if p.is_file()]
    tags = {tag for text in texts for tag in re.findall(r"\bmlproxy:(\d+\.\d+\.\d+)\b", text)}
    assert tags == {project_version()}
