"""Player identities: JSON Web Tokens a game signs itself, with keys this server is configured with.

A key is configured per issuer (`iss`) with its one algorithm: `ISSUER=ALG:SOURCE`, SOURCE `file:PATH` (a PEM
public key, or an HMAC secret's bytes) or `env:NAME` (an HMAC secret in that environment variable). An issuer may
have several keys at once (rotation): a token is accepted when any of them verifies it. Secrets are never taken
from the command line itself (it shows in `ps`) and never logged.

A token is accepted when its header's `alg` is the algorithm of one of its issuer's keys (so `none`, and HS256
signed with an RSA public key as the secret, are refused before any verification), its signature verifies, and
it has `iss`, `sub` and `exp` (expired no more than the leeway ago; `nbf`, when present, likewise). `(iss, sub)`
is one user, created on first use with the `name` claim as its display name. Every refusal is UNAUTHENTICATED
with a reason that says which check failed; the token itself is never echoed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import jwt
from jwt.algorithms import get_default_algorithms

from communities.domain import validation
from communities.domain.errors import InvalidArgument, Unauthenticated
from communities.services.context import App, Principal
from communities.storage import repository as repo

ALGORITHMS = (
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
# RFC 7518 3.2: an HMAC key at least as long as the hash.
MIN_HMAC_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
SUBJECT_MAX = 255
DEFAULT_NAME = "Player"

_SPEC = re.compile(r"^(?P<issuer>[^\s]+?)=(?P<algorithm>" + "|".join(ALGORITHMS) + r"):(?P<source>(?:file|env):.+)$")
SPEC_FORM = "ISSUER=ALG:file:PATH or ISSUER=ALG:env:NAME (ALG one of " + ", ".join(ALGORITHMS) + ")"


class JwtConfigError(Exception):
    """A JWT key setting that cannot be used; the text says which and why (never the secret)."""


@dataclass(frozen=True)
class JwtKey:
    issuer: str
    algorithm: str
    key: object  # what PyJWT verifies with: bytes for HMAC, a `cryptography` public key otherwise
    source: str  # where it came from (file:PATH / env:NAME), for messages

    def __repr__(self) -> str:  # never the key
        return f"JwtKey({self.issuer!r}, {self.algorithm}, {self.source})"


def parse_key(spec: str, environ: dict[str, str] | None = None) -> JwtKey:
    """`ISSUER=ALG:file:PATH` or `ISSUER=ALG:env:NAME` -> a key ready to verify with."""
    environ = os.environ if environ is None else environ
    match = _SPEC.match(spec.strip())
    if match is None:
        raise JwtConfigError(f"--jwt-key (COMMUNITIES_JWT_KEYS) entries must be {SPEC_FORM}; got {_shown(spec)}")
    issuer, algorithm, source = match["issuer"], match["algorithm"], match["source"]
    kind, _, where = source.partition(":")
    label = f"the {algorithm} key of issuer {issuer!r} ({source})"
    if kind == "env":
        if algorithm not in HMAC_ALGORITHMS:
            raise JwtConfigError(f"{label}: public keys are read from a PEM file (file:PATH), not the environment")
        value = environ.get(where)
        if not value:
            raise JwtConfigError(f"{label}: environment variable {where} is not set or empty")
        material = value.encode("utf-8")
    else:
        try:
            material = Path(where).read_bytes()
        except OSError as error:
            raise JwtConfigError(f"{label}: cannot read the file: {error.strerror}") from None
    if algorithm in HMAC_ALGORITHMS:
        material = material.strip()  # a trailing newline of a secret file is not part of the secret
        if len(material) < MIN_HMAC_SECRET_BYTES[algorithm]:
            raise JwtConfigError(
                f"{label}: the secret must be at least {MIN_HMAC_SECRET_BYTES[algorithm]} bytes, "
                f"got {len(material)} (e.g. `openssl rand -base64 48`)"
            )
    try:
        prepared = get_default_algorithms()[algorithm].prepare_key(material)
    except (jwt.InvalidKeyError, ValueError, TypeError) as error:
        raise JwtConfigError(f"{label}: not a usable {algorithm} key ({type(error).__name__})") from None
    if algorithm not in HMAC_ALGORITHMS and hasattr(prepared, "public_key") and not _is_public(prepared):
        prepared = prepared.public_key()  # a private key was given: verifying needs only its public half
    return JwtKey(issuer, algorithm, prepared, source)


def _is_public(key) -> bool:
    return "Public" in type(key).__name__


def _shown(spec: str) -> str:
    """A bad entry, for the error line, without what could be a secret pasted in place of a source."""
    issuer, separator, _ = spec.partition("=")
    return repr(f"{issuer}=..." if separator else "...")


def parse_keys(specs: list[str], environ: dict[str, str] | None = None) -> list[JwtKey]:
    return [parse_key(spec, environ) for spec in specs if spec.strip()]


def split_env(value: str) -> list[str]:
    """COMMUNITIES_JWT_KEYS: entries separated by whitespace (spaces or newlines)."""
    return value.split()


@dataclass(frozen=True)
class Claims:
    issuer: str
    subject: str
    name: str
    expires_ms: int  # when calls with this token stop being accepted (exp + leeway), Unix ms


def _refused(message: str, reason: str, **metadata: str) -> Unauthenticated:
    return Unauthenticated(message, reason=reason, metadata=metadata or None)


class JwtVerifier:
    def __init__(self, keys: list[JwtKey], *, leeway_seconds: float = 30.0, audience: str | None = None):
        self.leeway = float(leeway_seconds)
        self.audience = audience or None
        self._keys: dict[str, list[JwtKey]] = {}
        for key in keys:
            self._keys.setdefault(key.issuer, []).append(key)

    @property
    def issuers(self) -> list[str]:
        return sorted(self._keys)

    def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _refused("Malformed JSON Web Token", "JWT_MALFORMED") from None
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise _refused("The JSON Web Token has no `iss` (issuer) claim", "JWT_MISSING_CLAIM", claim="iss")
        keys = self._keys.get(issuer)
        if not keys:
            raise _refused("The JSON Web Token's issuer is not one this server trusts", "JWT_UNKNOWN_ISSUER")
        algorithm = header.get("alg")
        candidates = [key for key in keys if key.algorithm == algorithm]
        if not candidates:
            expected = ", ".join(sorted({key.algorithm for key in keys}))
            raise _refused(
                f"The JSON Web Token's algorithm is not the one configured for its issuer (expected {expected})",
                "JWT_WRONG_ALGORITHM",
            )
        for key in candidates:
            try:
                payload = jwt.decode(
                    token,
                    key.key,
                    algorithms=[key.algorithm],
                    issuer=issuer,
                    audience=self.audience,
                    leeway=self.leeway,
                    options={"require": ["exp", "sub", "iss"]},
                )
            except jwt.InvalidSignatureError:
                continue  # another key of the issuer (rotation) may verify it
            except jwt.ExpiredSignatureError:
                raise _refused("The JSON Web Token has expired", "JWT_EXPIRED") from None
            except jwt.ImmatureSignatureError:
                raise _refused("The JSON Web Token is not valid yet (`nbf`)", "JWT_NOT_YET_VALID") from None
            except jwt.MissingRequiredClaimError as error:
                raise _refused(
                    f"The JSON Web Token has no `{error.claim}` claim", "JWT_MISSING_CLAIM", claim=error.claim
                ) from None
            except jwt.InvalidAudienceError:
                expected = f"`{self.audience}`" if self.audience else "none (set --jwt-audience to accept one)"
                raise _refused(
                    f"The JSON Web Token's audience (`aud`) is not this server's: expected {expected}",
                    "JWT_WRONG_AUDIENCE",
                ) from None
            except jwt.PyJWTError as error:  # a claim of the wrong type (exp not a number, sub not a string...)
                raise _refused(f"Invalid JSON Web Token claims: {error}", "JWT_INVALID_CLAIM") from None
            return self._claims(payload)
        raise _refused("The JSON Web Token's signature does not verify", "JWT_BAD_SIGNATURE")

    def _claims(self, payload: dict) -> Claims:
        subject = payload["sub"]
        if not subject or len(subject) > SUBJECT_MAX:
            raise _refused(f"`sub` must be 1..{SUBJECT_MAX} characters", "JWT_INVALID_CLAIM", claim="sub")
        name = payload.get("name")
        try:
            name = validation.clean_name(name) if isinstance(name, str) else DEFAULT_NAME
        except InvalidArgument:
            name = DEFAULT_NAME
        expires_ms = int((float(payload["exp"]) + self.leeway) * 1000)
        return Claims(payload["iss"], subject, name, expires_ms)


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts (CLI tokens start with `cmt_` and have no dots)."""
    return token.count(".") == 2


async def authenticate(app: App, token: str) -> Principal:
    verifier: JwtVerifier | None = app.jwt
    if verifier is None:
        raise _refused("This server trusts no JSON Web Token issuers", "JWT_UNKNOWN_ISSUER")
    claims = verifier.verify(token)
    user = await repo.user_by_identity(app.db, claims.issuer, claims.subject)
    if user is None:
        user_id = app.ids.next_id()
        async with app.db.unit_of_work(write=True) as uow:
            user = await repo.claim_identity(uow, claims.issuer, claims.subject, user_id, claims.name, app.clock_ms())
    return Principal(id=user.id, name=user.name, bot=user.bot, expires_ms=claims.expires_ms)
