"""What the image does, without a container engine (issue 14): the Dockerfile's own install
steps (deploy/install.sh, with the image's paths mapped to folders here) build the wheel
from the build context .dockerignore lets through, install it into a fresh virtualenv
from those wheels alone, and the result runs as the image runs it: the image's
ENTRYPOINT, CMD, environment and configuration, as PID 1 on a read-only filesystem
(tests/support/container.py). It serves, its HEALTHCHECK passes, /readyz says ready, a
plain and an ML statement answer as directly and as the source tree's model, and SIGTERM
ends it with exit 0; a SIGTERM that arrives while it starts is not lost."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from ml_backends.local import LocalSentimentBackend
from proxy.ops.endpoint import HEALTH_PATH, METRICS_PATH, READY_PATH
from tests.conftest import APP, TEST_DB
from tests.support import dockerfile as df
from tests.support.backend import BackendInfo
from tests.support.container import Container, available
from tests.support.manifests import ROOT, project_version

#: The python image's PATH, under the image's own ENV.
IMAGE_BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/nonexistent",
}
#: Where the image's files are made: not /tmp, which the container hides.
IMAGE_HOME = "/var/tmp"
#: Seconds the image gets to start, and to stop after SIGTERM with nothing running.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
#: A statement without ML calls, answered through the proxy and directly as the same user.
PLAIN = "SELECT CURRENT_USER(), DATABASE(), @@version, CONNECTION_ID() > 0"
TEXTS = (
    "This is very useful, thank you for writing it!",
    "Horrible writing, I have read better books.",
    "An interesting write up, please add more details.",
)


def _container_or_skip() -> None:
    if not available():
        if os.environ.get("CI"):
            pytest.fail("CI must run the image test as PID 1 on a read-only root (root, unshare)")
        pytest.skip("needs root and util-linux's unshare (CI has both)")


@dataclass
class Image:
    """The image's files, here: ``paths`` maps the image's paths to folders here."""

    context: Path
    wheelhouse: Path
    venv: Path
    paths: dict[str, Path]
    install_log: str

    def host(self, value: str) -> str:
        """An image path (or a PATH-like list of them) as the folder here."""
        out = []
        for part in value.split(":"):
            for inside, here in self.paths.items():
                if part == inside or part.startswith(inside + "/"):
                    part = str(here) + part[len(inside) :]
                    break
            out.append(part)
        return ":".join(out)

    def env(self, **settings: str) -> dict[str, str]:
        """The container's environment: the base image's, the Dockerfile's ENV, then the
        deployment's MLPROXY_* variables."""
        image_env = df.environment(runtime_stage(), IMAGE_BASE_ENV)
        return {**{k: self.host(v) for k, v in image_env.items()}, **settings}

    def command(self) -> list[str]:
        final = runtime_stage()
        return df.exec_form(final.last("ENTRYPOINT")) + df.exec_form(final.last("CMD"))

    def healthcheck(self, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """The Dockerfile's HEALTHCHECK command, as Docker runs it (in the container's
        environment and network)."""
        _, command = df.split_options(runtime_stage().last("HEALTHCHECK"))
        argv = df.exec_form(command.removeprefix("CMD").strip())
        path = shutil.which(argv[0], path=env["PATH"])
        assert path is not None, argv[0]
        return subprocess.run(
            [path, *argv[1:]], env=env, capture_output=True, text=True, timeout=15, check=False
        )


def runtime_stage() -> df.Stage:
    return df.parse_dockerfile(df.DOCKERFILE.read_text(encoding="utf-8"))[-1]


def run_step(command: str, paths: dict[str, Path], cwd: Path, env: dict[str, str]) -> str:
    """One RUN of the Dockerfile, with the image's paths mapped to folders here."""
    argv = [str(paths.get(word, word)) for word in shlex.split(command)]
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def isolated_pip_env() -> dict[str, str]:
    """No pip configuration at all (no index, no extra wheel folders): the runtime stage
    has nothing but the build stage's wheels."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PYTHON": sys.executable}


def build_image(where: Path) -> Image:
    build, final = df.parse_dockerfile(df.DOCKERFILE.read_text(encoding="utf-8"))
    assert build.last("WORKDIR") == "/src" and build.arguments("COPY") == [". ."]
    context = where / "src"
    for name in df.context_files():  # COPY . . of what .dockerignore lets in
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, context / name)
    built = {"/src": context, "/wheels": where / "wheels"}
    log = ""
    for command in build.arguments("RUN"):
        log += run_step(command, built, context, {**os.environ, "PYTHON": sys.executable})
    [install] = [run for run in final.arguments("RUN") if "install.sh" in run]
    runtime = {"/opt/mlproxy": where / "venv"}
    for mount in df.mounts(install):
        from_build = mount.get("from") == "build"
        runtime[mount["target"]] = (
            built[mount["source"]] if from_build else context / mount["source"]
        )
    log += run_step(df.split_options(install)[1], runtime, where, isolated_pip_env())
    for copy in final.arguments("COPY"):
        source, target = copy.split()
        runtime[target] = context / source
    return Image(context, built["/wheels"], runtime["/opt/mlproxy"], runtime, log)


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """Built outside /tmp: the container's /tmp is a fresh tmpfs, as in Kubernetes."""
    where = Path(tempfile.mkdtemp(prefix="mlproxy-image-", dir=IMAGE_HOME))
    try:
        yield build_image(where)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def wait_for(url: str, container: Container) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while get(url)[0] != 200:
        assert container.process.poll() is None, "the image's process exited while starting"
        assert time.monotonic() < deadline, f"{url} never answered 200"
        time.sleep(0.1)


# -- the wheel ----------------------------------------------------------------------------


def test_the_wheel_holds_the_packages_and_nothing_else(image: Image) -> None:
    [wheel] = image.wheelhouse.glob("mlproxy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = f"mlproxy-{project_version()}.dist-info"
    assert {name.split("/")[0] for name in names} == {"proxy", "rewriter", "ml_backends", dist_info}
    for package in ("proxy", "rewriter", "ml_backends"):
        sources = {
            str(p.relative_to(ROOT))
            for p in (ROOT / package).rglob("*.py")
            if "__pycache__" not in p.parts
        }
        assert sources <= names, sorted(sources - names)
        assert f"{package}/py.typed" in names  # PEP 561
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "mlproxy = proxy.cli.main:main" in entry_points


def test_the_runtime_install_is_the_wheels_and_runs(image: Image) -> None:
    assert f"mlproxy {project_version()}" in image.install_log  # install.sh's own check
    installed = subprocess.run(
        [str(image.venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        env=isolated_pip_env(),
    )
    names = {entry["name"].lower().replace("_", "-") for entry in json.loads(installed.stdout)}
    wheels = {w.name.split("-")[0].lower().replace("_", "-") for w in image.wheelhouse.iterdir()}
    assert names - {"pip", "setuptools"} == wheels
    # The offline sentiment model's lexicon came with its package.
    lexicons = list(image.venv.glob("lib/python*/site-packages/vaderSentiment/vader_lexicon.txt"))
    assert len(lexicons) == 1 and lexicons[0].stat().st_size > 100_000


# -- running it ---------------------------------------------------------------------------


@pytest.fixture
def served(
    image: Image, backend: BackendInfo, tmp_path: Path
) -> Iterator[tuple[Image, dict[str, str], Container]]:
    """The image's command as PID 1, configured as a deployment would: the backend and
    the addresses through MLPROXY_* variables, the rest from the image's own file."""
    _container_or_skip()
    env = image.env(
        MLPROXY_BACKEND=f"mysql://{backend.host}:{backend.port}",
        MLPROXY_LISTEN=f"127.0.0.1:{free_port()}",
        MLPROXY_METRICS_LISTEN=f"127.0.0.1:{free_port()}",
    )
    log = (tmp_path / "stderr").open("w+")
    container = Container(image.command(), env, image.venv, stderr=log, stdout=log)
    try:
        yield image, env, container
    finally:
        container.kill()
        log.close()


def test_the_image_serves_checks_healthy_and_stops_cleanly_on_sigterm(
    served: tuple[Image, dict[str, str], Container], backend: BackendInfo, tmp_path: Path
) -> None:
    image, env, container = served
    metrics = f"http://{env['MLPROXY_METRICS_LISTEN']}"
    wait_for(metrics + HEALTH_PATH, container)
    check = image.healthcheck(env)
    assert check.returncode == 0, check.stderr
    assert get(metrics + READY_PATH) == (200, "ready\n")

    _, port = env["MLPROXY_LISTEN"].split(":")
    model = LocalSentimentBackend()  # the source tree's model: the oracle
    with (
        pymysql.connect(
            host="127.0.0.1", port=int(port), user=APP.user, password=APP.password, database=TEST_DB
        ) as conn,
        conn.cursor() as cur,
    ):
        for text in TEXTS:
            cur.execute(
                "SELECT aws_comprehend_detect_sentiment(%s, 'en'),"
                " aws_comprehend_detect_sentiment_confidence(%s, 'en')",
                (text, text),
            )
            label, confidence = cur.fetchone()
            expected = model.score(text)
            assert (label, confidence) == (expected.label, pytest.approx(expected.confidence))
        cur.execute(PLAIN)
        through_proxy = cur.fetchall()
    with direct_as_app(backend) as direct, direct.cursor() as cur:
        cur.execute(PLAIN)
        assert through_proxy == cur.fetchall()
    status, text = get(metrics + METRICS_PATH)
    assert status == 200 and 'mlproxy_statements_total{path="ml"}' in text

    assert container.pid_inside() == 1 and container.catches(signal.SIGTERM)
    container.signal(signal.SIGTERM)
    assert container.wait(STOP_TIMEOUT) == 0
    records = [json.loads(line) for line in read_log(tmp_path) if line.strip()]
    assert records[-1]["message"] == "mlproxy stopped"
    assert not [r for r in records if r["level"] in ("error", "critical")], records
    # The check can fail: with the process gone it does.
    gone = image.healthcheck(env)
    assert gone.returncode == 1 and "mlproxy healthcheck:" in gone.stderr


def direct_as_app(backend: BackendInfo) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=backend.host,
        port=backend.port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
    )


def read_log(tmp_path: Path) -> list[str]:
    return (tmp_path / "stderr").read_text(encoding="utf-8").splitlines()


class GatedRelay:
    """A TCP relay to the backend that holds every connection until ``release()``: the
    proxy's start-up probe of the backend waits on it for as long as a test needs."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.connected = threading.Event()
        self._released = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connected.set()
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        self._released.wait()
        with client, socket.create_connection(self.target) as upstream:
            threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
            _pipe(client, upstream)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sigterm_while_starting_is_not_lost_by_pid_1(
    image: Image, backend: BackendInfo, tmp_path: Path, workers: int
) -> None:
    """As PID 1 a signal without a handler is dropped: the handler must be there before
    the backend probe, which may take connect_timeout, so a stop sent then is obeyed (by
    one process, and by the supervisor of ``--workers``)."""
    _container_or_skip()
    relay = GatedRelay((backend.host, backend.port))
    env = image.env(
        MLPROXY_BACKEND=f"mysql://127.0.0.1:{relay.port}",
        MLPROXY_CONNECT_TIMEOUT="60",
        MLPROXY_WORKERS=str(workers),
        MLPROXY_LISTEN=f"127.0.0.1:{free_port()}",
        MLPROXY_METRICS_LISTEN=f"127.0.0.1:{free_port()}",
    )
    log = (tmp_path / "stderr").open("w+")
    container = Container(image.command(), env, image.venv, stderr=log, stdout=log)
    try:
        assert relay.connected.wait(START_TIMEOUT), "the proxy never probed the backend"
        assert container.catches(signal.SIGTERM), "no SIGTERM handler while starting"
        container.signal(signal.SIGTERM)
        relay.release()
        assert container.wait(STOP_TIMEOUT) == 0, read_log(tmp_path)
    finally:
        container.kill()
        relay.close()
        log.close()
    records = [json.loads(line) for line in read_log(tmp_path) if line.strip()]
    assert "mlproxy stopped" in [r["message"] for r in records]
    assert not [r for r in records if r["level"] in ("error", "critical")], records
