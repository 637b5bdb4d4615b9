"""AWS Signature Version 4, checked as AWS services check it: the local fakes' share.

Implements the signing process of the AWS General Reference ("Signature Version 4
signing process"): canonical request, string to sign, derived key, HMAC comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]+)"
)


def scope_region(authorization: str) -> str | None:
    match = _AUTH.match(authorization)
    return match["scope"].split("/")[1] if match else None


def check_sigv4(
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, str],
    service: str,
    region: str | None,
) -> tuple[str, str] | None:
    """None when the request carries a valid SigV4 signature by a known key, scoped to
    ``service`` and ``region`` (any region when None); else the service's (error code, message).

    The canonical path is the path as sent (already percent-encoded by the client)
    encoded once more, as SigV4 does for every service but S3: a Bedrock model id's
    ``:`` travels as ``%3A`` and is signed as ``%253A``."""
    match = _AUTH.match(headers.get("authorization", ""))
    if match is None:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    secret = credentials.get(match["key"])
    if secret is None:
        return (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    date, scope_region, scope_service, terminator = match["scope"].split("/")
    if scope_service != service or terminator != "aws4_request":
        return (
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    if region is not None and scope_region != region:
        return (
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{scope_region}'.",
        )
    parts = urlsplit(raw_path)
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    signed = match["signed"].split(";")
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/~"),
            query,
            "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed),
            match["signed"],
            headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            headers.get("x-amz-date", ""),
            match["scope"],
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, scope_region, scope_service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        return (
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None
