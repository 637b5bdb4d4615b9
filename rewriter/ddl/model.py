"""The ML DDL's model: what a parsed statement says, and the error numbers used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: MySQL error numbers raised here.
ER_PARSE_ERROR = 1064
ER_WRONG_ARGUMENTS = 1210
ER_NOT_SUPPORTED_YET = 1235
ER_SP_DUP_PARAM = 1330

SAGEMAKER_ALIAS = "AWS_SAGEMAKER_INVOKE_ENDPOINT"
BEDROCK_ALIAS = "AWS_BEDROCK_INVOKE_MODEL"
DEFAULT_MAX_BATCH_SIZE = 10000
DEFAULT_CONTENT_TYPE = "application/json"

Kind = Literal["sagemaker", "bedrock"]
Security = Literal["DEFINER", "INVOKER"]


@dataclass(frozen=True)
class Argument:
    """One parameter of an alias function; ``sql_type`` is normalized (``BIGINT(20)``)."""

    name: str
    sql_type: str


@dataclass(frozen=True)
class AliasFunction:
    """A parsed ``CREATE FUNCTION ... ALIAS``. ``sql`` is a canonical rendering (for
    SHOW CREATE FUNCTION); parsing it again gives an equal object."""

    schema: str | None
    name: str
    args: tuple[Argument, ...]
    returns: str
    kind: Kind
    endpoint: str | None
    model_id: str | None
    max_batch_size: int
    content_type: str | None
    accept: str | None
    timeout_ms: int | None
    definer: str | None
    security: Security | None
    sql: str = ""

    @property
    def target_name(self) -> str:
        """The ENDPOINT NAME (SageMaker) or MODEL ID (Bedrock) the SQL wrote: a name the
        endpoint map or AWS resolves, never a target itself (ml_backends.targets)."""
        return (self.endpoint if self.kind == "sagemaker" else self.model_id) or ""


@dataclass(frozen=True)
class DropFunction:
    """A parsed ``DROP FUNCTION``: the caller decides whether it names an alias."""

    schema: str | None
    name: str
    if_exists: bool
