"""The endpoint map: ``--endpoint NAME=TARGET`` from flags, the environment and TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli.main import build_parser
from proxy.config import endpoint_routes, load_config
from proxy.errors import ConfigError

BACKEND = {"backend": "mysql://127.0.0.1:3306"}


def test_repeated_flags_build_the_map_and_a_later_entry_wins() -> None:
    args = build_parser().parse_args(
        ["serve", "--endpoint", "a=http://x:1", "--endpoint", "b=python:m:f", "--endpoint", "a=c"]
    )
    config = load_config({**vars(args), **BACKEND}, env={})
    assert config.endpoint == ("a=http://x:1", "b=python:m:f", "a=c")
    assert endpoint_routes(config) == {"a": "c", "b": "python:m:f"}


def test_the_environment_takes_space_separated_pairs() -> None:
    config = load_config(
        BACKEND, env={"MLPROXY_ENDPOINT": "churn=http://h:8080/x  llm=openai+http://h/v1"}
    )
    assert endpoint_routes(config) == {"churn": "http://h:8080/x", "llm": "openai+http://h/v1"}


@pytest.mark.parametrize(
    "toml",
    [
        'endpoint = ["tuning-job-123=python:examples.churn.model:predict_batch"]\n',
        '[endpoint]\n"tuning-job-123" = "python:examples.churn.model:predict_batch"\n',
    ],
)
def test_a_config_file_takes_a_list_or_a_table(tmp_path: Path, toml: str) -> None:
    path = tmp_path / "mlproxy.toml"
    path.write_text(toml, encoding="utf-8")
    config = load_config(BACKEND, env={}, config_file=str(path))
    assert endpoint_routes(config) == {
        "tuning-job-123": "python:examples.churn.model:predict_batch"
    }


@pytest.mark.parametrize("bad", ["no-equals-sign", "=target", "name="])
def test_a_malformed_pair_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="expected NAME=TARGET"):
        load_config({**BACKEND, "endpoint": [bad]}, env={})
