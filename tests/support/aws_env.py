"""The environment the tests run the AWS backends in: the fakes' test credentials and
nothing from the host (no region, profile, session or bearer token, config files or
instance metadata), so boto3 can only reach the fakes, signing as they expect."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_comprehend import ACCESS_KEY, SECRET_KEY

#: What the host may have set that would change how boto3 (or an endpoint) signs.
HOST_SETTINGS = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",  # botocore would send it instead of signing
    "MLPROXY_OPENAI_API_KEY",
)


@contextlib.contextmanager
def fake_aws_env(empty: Path) -> Iterator[pytest.MonkeyPatch]:
    """Until the block ends; ``empty`` is a directory holding no AWS files."""
    with pytest.MonkeyPatch.context() as patch:
        for name in HOST_SETTINGS:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        patch.setenv("AWS_CONFIG_FILE", str(empty / "no-config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "no-credentials"))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield patch
