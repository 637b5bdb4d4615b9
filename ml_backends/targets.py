"""Where an alias's requests go: the operator's endpoint map, else AWS, never the SQL.

An alias names its model with an ENDPOINT NAME (SageMaker) or a MODEL ID (Bedrock), and
that name is SQL text any account allowed to create a function wrote. So the name only
ever *selects*: a name the operator's endpoint map (``--endpoint NAME=TARGET``, the config
file) lists goes to the target the operator wrote there; any other name must be a valid
AWS name and goes to AWS under that name. A name is never read as a target itself: no
SQL text chooses a module to import, a URL or a host (issue 10, item 1).

The AWS rules are the services' own (botocore's service models):

- SageMaker ``InvokeEndpoint`` ``EndpointName``: ``^[a-zA-Z0-9](-*[a-zA-Z0-9])*``, at most
  63 characters;
- Bedrock ``InvokeModel`` ``modelId``: 1 to 2048 characters matching the pattern below.

Names that look like one of the proxy's own target forms (``python:...``, anything with a
``scheme://``) are refused even where AWS's pattern would let them through (its catch-all
``[a-zA-Z0-9-:.]+`` matches ``python:builtins:list``): no real model is called that, and
refusing says clearly that such targets are the operator's to configure.

>>> resolve_alias_target("sagemaker", "churn-ep", {"churn-ep": "http://10.0.0.5:8080"})
AliasTarget(form='sagemaker-http', target='http://10.0.0.5:8080')
>>> resolve_alias_target("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", {})
AliasTarget(form='bedrock', target='anthropic.claude-3-haiku-20240307-v1:0')
>>> resolve_alias_target("bedrock", "python:builtins:list", {})
Traceback (most recent call last):
...
ml_backends.errors.InvalidTargetName: MODEL ID 'python:builtins:list' is not a Bedrock \
model id: targets other than AWS names come only from the proxy's endpoint map \
(--endpoint NAME=TARGET)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ml_backends.errors import InvalidTargetName
from ml_backends.registry import target_form

#: SageMaker's EndpointName (sagemaker-runtime 2017-05-13 service model).
SAGEMAKER_ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")

#: Bedrock's modelId (bedrock-runtime 2023-09-30 service model), matched in full.
BEDROCK_MODEL_ID = re.compile(
    r"(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:(([0-9]{12}:custom-model/[a-z0-9-]{1,63}[.]{1}"
    r"[a-z0-9-]{1,63}/[a-z0-9]{12})|(:foundation-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}"
    r"([.:]?[a-z0-9-]{1,63}))|([0-9]{12}:imported-model/[a-z0-9]{12})|([0-9]{12}:"
    r"provisioned-model/[a-z0-9]{12})|([0-9]{12}:custom-model-deployment/[a-z0-9]{12})|"
    r"([0-9]{12}:(inference-profile|application-inference-profile)/[a-zA-Z0-9-:.]+)))|"
    r"([a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}))|(([0-9a-zA-Z][_-]?)+)|"
    r"([a-zA-Z0-9-:.]+)|"
    r"(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:prompt/[0-9a-zA-Z]{10}(?::[0-9]{1,5})?)|"
    r"(arn:aws:sagemaker:[a-z0-9-]+:[0-9]{12}:endpoint/[a-zA-Z0-9-]+)|"
    r"(arn:aws(-[^:]+)?:bedrock:([0-9a-z-]{1,20}):([0-9]{12}):(default-)?prompt-router/"
    r"[a-zA-Z0-9-:.]+)"
)
BEDROCK_MODEL_ID_MAX = 2048

#: The prefixes of the proxy's own target forms (see ml_backends.registry).
_PROXY_TARGET = re.compile(r"python:|[A-Za-z][A-Za-z0-9+.-]*://", re.IGNORECASE)

_CLAUSE = {"sagemaker": "ENDPOINT NAME", "bedrock": "MODEL ID"}
_WHAT = {"sagemaker": "a SageMaker endpoint name", "bedrock": "a Bedrock model id"}


@dataclass(frozen=True)
class AliasTarget:
    """A resolved target: its form (a key of ml_backends.registry.ALIAS_BACKENDS, or
    ``python``) and the string that backend is built with."""

    form: str
    target: str


def is_aws_name(kind: str, name: str) -> bool:
    """Whether ``name`` is a valid SageMaker endpoint name / Bedrock model id."""
    if _PROXY_TARGET.match(name):
        return False
    if kind == "sagemaker":
        return SAGEMAKER_ENDPOINT_NAME.fullmatch(name) is not None
    return len(name) <= BEDROCK_MODEL_ID_MAX and BEDROCK_MODEL_ID.fullmatch(name) is not None


def check_alias_name(kind: str, name: str, routes: Mapping[str, str]) -> None:
    """Raise InvalidTargetName unless ``name`` is in the endpoint map or a valid AWS name
    (for CREATE FUNCTION: refuse what no call could use)."""
    if name in routes or is_aws_name(kind, name):
        return
    raise InvalidTargetName(
        f"{_CLAUSE.get(kind, 'name')} {name!r} is not {_WHAT.get(kind, 'an AWS name')}: "
        "targets other than AWS names come only from the proxy's endpoint map "
        "(--endpoint NAME=TARGET)"
    )


def resolve_alias_target(kind: str, name: str, routes: Mapping[str, str]) -> AliasTarget:
    """Where an alias named ``name`` sends its requests (see the module docstring)."""
    mapped = routes.get(name)
    if mapped is not None:
        return AliasTarget(target_form(kind, mapped), mapped)
    check_alias_name(kind, name, {})
    return AliasTarget(kind, name)
