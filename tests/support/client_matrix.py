"""The client matrix's harness: which clients, what each needs, the databases they use,
and one run of a client's script (tests/integration/clients/README.md says what a script
does; tests/integration/test_client_matrix.py compares the runs).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from ml_backends.local import LocalSentimentBackend

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "integration" / "clients"
STEPS = (
    "connect",
    "connect_tls",
    "params",
    "server_prepared",
    "client_prepared",
    "transaction",
    "call",
    "big_result",
    "emoji",
    "ml_constant",
    "ml_column",
    "error_1146",
    "close",
)
#: How long one run of a script may take (the slowest, Go's first build aside, takes ~10 s).
RUN_TIMEOUT = 300
SENTENCE = "I love this, thank you!"
ML_ROWS = 1000
CONNECTOR_J = Path("/usr/share/java/mariadb-java-client.jar")
GOPATH = Path("/usr/share/gocode")
GO_DRIVER = GOPATH / "src" / "github.com" / "go-sql-driver" / "mysql"


@dataclass(frozen=True)
class Client:
    """One client library: how to run its script, and how to tell its toolchain is here."""

    name: str
    command: tuple[str, ...]
    #: Commands that must succeed for the toolchain to count as installed.
    probes: tuple[tuple[str, ...], ...]
    #: What to install when a probe fails (the skip reason).
    install: str
    env: dict[str, str] = field(default_factory=dict)
    #: A build to run once before the first run (Go), its output the command's first word.
    #: ``{build}`` in ``command`` and ``build`` stands for the run's build directory.
    build: tuple[str, ...] | None = None

    def argv(self, build_dir: Path) -> list[str]:
        return [part.replace("{build}", str(build_dir)) for part in self.command]


def _python(name: str, driver: str, script: str, module: str, install: str) -> Client:
    return Client(
        name=name,
        command=(sys.executable, str(CLIENTS_DIR / "python" / script)),
        probes=((sys.executable, "-c", f"import {module}"),),
        install=install,
        env={"MX_DRIVER": driver},
    )


def clients() -> tuple[Client, ...]:
    """Every client of the matrix."""
    go_binary = "{build}/mx-go-client"
    # Debian's packaged driver lives in GOPATH: GOPATH mode, no module download.
    go_env = {"GO111MODULE": "off", "GOPATH": str(GOPATH)}
    php = CLIENTS_DIR / "php" / "client.php"
    return (
        Client(
            "node-mysql2",
            ("node", str(CLIENTS_DIR / "node" / "client.js")),
            (("node", "-e", "require('mysql2')"),),
            "nodejs and `npm ci` in tests/integration/clients/node (./dev test does both)",
            env={"NODE_PATH": str(CLIENTS_DIR / "node" / "node_modules")},
        ),
        Client(
            "java-connectorj",
            ("java", "-cp", str(CONNECTOR_J), str(CLIENTS_DIR / "java" / "Client.java")),
            (("javac", "-version"), ("test", "-f", str(CONNECTOR_J))),
            "Debian packages libmariadb-java and default-jdk-headless",
        ),
        Client(
            "go-sql-driver",
            (go_binary,),
            (("go", "version"), ("test", "-d", str(GO_DRIVER))),
            "Debian packages golang-go and golang-github-go-sql-driver-mysql-dev",
            env=go_env,
            build=("go", "build", "-o", go_binary, str(CLIENTS_DIR / "go" / "client.go")),
        ),
        Client(
            "php-mysqli",
            ("php", str(php)),
            (("php", "-r", "exit(extension_loaded('mysqli') ? 0 : 1);"),),
            "Debian packages php-cli and php-mysql",
            env={"MX_DRIVER": "mysqli"},
        ),
        Client(
            "php-pdo",
            ("php", str(php)),
            (("php", "-r", "exit(extension_loaded('pdo_mysql') ? 0 : 1);"),),
            "Debian packages php-cli and php-mysql",
            env={"MX_DRIVER": "pdo"},
        ),
        Client(
            "ruby-mysql2",
            ("ruby", str(CLIENTS_DIR / "ruby" / "client.rb")),
            (("ruby", "-e", "require 'mysql2'"),),
            "Debian package ruby-mysql2",
        ),
        Client(
            "perl-dbd-mariadb",
            ("perl", str(CLIENTS_DIR / "perl" / "client.pl")),
            (("perl", "-MDBD::MariaDB", "-e", "1"),),
            "Debian package libdbd-mariadb-perl",
        ),
        _python("pymysql", "pymysql", "dbapi_client.py", "pymysql", "PyMySQL (test extra)"),
        _python(
            "connector-pure",
            "connector_pure",
            "dbapi_client.py",
            "mysql.connector",
            "mysql-connector-python (test extra)",
        ),
        _python(
            "connector-c",
            "connector_c",
            "dbapi_client.py",
            "_mysql_connector",
            "mysql-connector-python with its C extension (test extra)",
        ),
        _python("mariadb-python", "mariadb", "dbapi_client.py", "mariadb", "mariadb (test extra)"),
        _python("asyncmy", "asyncmy", "asyncmy_client.py", "asyncmy", "asyncmy (test extra)"),
    )


def missing_toolchain(client: Client) -> str | None:
    """Why ``client`` cannot run here (what to install), or None when it can."""
    for probe in client.probes:
        if shutil.which(probe[0]) is None:
            return f"{probe[0]} not found: install {client.install}"
        env = os.environ | client.env
        done = subprocess.run(probe, env=env, capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            return f"`{' '.join(probe)}` failed: install {client.install}"
    return None


def build(client: Client, build_dir: Path) -> None:
    """Build the client's program (Go) into ``build_dir``; raises with the compiler's
    output on failure."""
    if client.build is None:
        return
    command = [part.replace("{build}", str(build_dir)) for part in client.build]
    done = subprocess.run(
        command, env=os.environ | client.env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"building {client.name} failed:\n{done.stdout}\n{done.stderr}")


@dataclass(frozen=True)
class StepResult:
    step: str
    ok: bool
    detail: Any


@dataclass(frozen=True)
class ClientRun:
    """One run of a client's script: its step lines, and its stderr for diagnosis."""

    steps: dict[str, StepResult]
    stderr: str
    returncode: int

    def step(self, name: str) -> StepResult:
        """The step's line; a step the script never printed counts as failed."""
        found = self.steps.get(name)
        if found is not None:
            return found
        return StepResult(name, False, f"no line (exit {self.returncode}): {self.stderr[-2000:]}")


def run_client(client: Client, server: dict[str, str], build_dir: Path) -> ClientRun:
    """Run the script against ``server`` (the MX_* variables) and parse its lines."""
    env = os.environ | client.env | server
    done = subprocess.run(
        client.argv(build_dir), env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    steps: dict[str, StepResult] = {}
    for line in done.stdout.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step") in STEPS:
            steps[record["step"]] = StepResult(record["step"], bool(record["ok"]), record["detail"])
    return ClientRun(steps, done.stderr, done.returncode)


# -- the databases the scripts use -----------------------------------------------------------

ITEMS = [(i, f"item {i} ünï", f"{i * 1.25:.2f}") for i in range(1, 11)]
_WORDS = ("great", "terrible", "okay", "wonderful", "awful", "fine", "boring", "lovely")


def ml_texts() -> list[str]:
    """1,000 distinct sentences with every label among their answers."""
    return [
        f"Order {i}: the service was {_WORDS[i % 8]} and the food was {_WORDS[(i // 8) % 8]}"
        for i in range(1, ML_ROWS + 1)
    ]


@functools.cache
def model_answers() -> dict[str, tuple[str, float]]:
    """The local model's (label, confidence) for every text the ML steps send."""
    model = LocalSentimentBackend()
    answers = {}
    for sentence in (SENTENCE, *ml_texts()):
        sentiment = model.score(sentence)
        answers[sentence] = (sentiment.label, sentiment.confidence)
    return answers


def prepare_database(
    admin: pymysql.Connection[Any], name: str, answers: dict[str, tuple[str, float]] | None
) -> None:
    """The tables and procedure of the steps; with ``answers``, the two ML functions as
    stored functions reading them (the direct side's oracle)."""
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        cur.execute(f"USE {name}")
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2))")
        cur.executemany("INSERT INTO items VALUES (%s, %s, %s)", ITEMS)
        cur.execute("CREATE TABLE scratch (id INT PRIMARY KEY, txt VARCHAR(100)) ENGINE=InnoDB")
        cur.execute(
            "CREATE PROCEDURE items_upto(n INT)"
            " SELECT id, name FROM items WHERE id <= n ORDER BY id"
        )
        cur.execute("CREATE TABLE ml_texts (id INT PRIMARY KEY, txt VARCHAR(200))")
        cur.executemany(
            "INSERT INTO ml_texts VALUES (%s, %s)", list(enumerate(ml_texts(), start=1))
        )
        if answers is not None:
            _oracle_functions(cur, answers)


def _oracle_functions(cur: Any, answers: dict[str, tuple[str, float]]) -> None:
    cur.execute(
        "CREATE TABLE ml_answers (txt VARCHAR(200) COLLATE utf8mb4_bin PRIMARY KEY,"
        " label VARCHAR(16), confidence DOUBLE)"
    )
    cur.executemany(
        "INSERT INTO ml_answers VALUES (%s, %s, %s)",
        [(txt, label, confidence) for txt, (label, confidence) in answers.items()],
    )
    for function, column, returns in (
        ("aws_comprehend_detect_sentiment", "label", "VARCHAR(16) CHARSET utf8mb4"),
        ("aws_comprehend_detect_sentiment_confidence", "confidence", "DOUBLE"),
    ):
        cur.execute(
            f"CREATE FUNCTION {function}(t TEXT, lang VARCHAR(16)) RETURNS {returns}"
            f" READS SQL DATA RETURN (SELECT {column} FROM ml_answers WHERE txt = t)"
        )


def create_account(
    admin: pymysql.Connection[Any], user: str, password: str, dbs: Sequence[str]
) -> None:
    """A new mysql_native_password account (MariaDB's default) with rights on ``dbs``."""
    with admin.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        for db in dbs:
            cur.execute(f"GRANT ALL ON {db}.* TO '{user}'@'%'")
