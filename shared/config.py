"""Settings: read from the environment once per container into frozen objects.

Every variable name lives in this module (a role's renewed keys are read again, by these names, in
shared.vod_cloud_api). Precedence: the environment variable, else the default written next to it (and in the
README's settings table). A load validates everything and raises
one ConfigError naming every bad variable, so an operator fixes them in one pass.
"""

from __future__ import annotations

import os
import re

from shared.digests import compare_digest
from shared.logs import ERROR, LEVELS, WARNING, log_event
from shared.records import Record
from shared.vod_limits import MAX_VALIDITY_SECONDS, TASK_NOTIFY_MODES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Literal, TypeVar
    from urllib.parse import SplitResult

    T = TypeVar("T")
    AuthMode = Literal["jwt", "gateway", "none"]

# Patterns as text: `re` compiles (and caches) only those a function's settings use, at its cold start.
_REGION = r"[a-z]{2,4}(-[a-z]+)+(-[0-9]+)?"
_SIGN_KEY = r"[A-Za-z0-9]{1,32}"
MIN_DEPLOYED_SIGN_KEY = 16  # 62^16 > 2^95 keys to try
_API_HOST = r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?"  # a name, IPv4 or [IPv6]; a port
# shared.hs_jwt.HASHES (not imported: only sign and uploads need it), with each hash's size in bytes.
_SYMMETRIC_ALGS = {"HS256": 32, "HS384": 48, "HS512": 64}
_ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "ES256K", "EdDSA")
_MAX_CLASS_ID = 2**31 - 1
DEFAULT_DATABASE_URL = "sqlite:///.local/vod.sqlite3"
# Bounds every wait on the store (SQLite busy lock, PostgreSQL connect/statement) so a stuck store
# answers 503 before SCF's own timeout (10 s in serverless.yml) ends the invocation.
DEFAULT_DATABASE_TIMEOUT = 3
CALLBACK_MAX_BODY_BYTES = 6 * 1024 * 1024
MAX_WAIT_SECONDS = 20  # the uploads function's longest ?wait (its timeout in serverless.yml allows it, and a read)
CONFIRM_MODES = ("none", "fetch")
# Set by SCF's runtime in every function instance (Tencent's "环境变量" page lists them).
SCF_BUILTIN_VARIABLES = ("TENCENTCLOUD_RUNENV", "SCF_RUNTIME", "SCF_FUNCTIONNAME")
# An SCF execution role's temporary keys, as SCF injects them: read at load (_read_vod_api), and at each request
# by shared.vod_cloud_api (the one read after the load: SCF renews them while a container stays warm).
ROLE_CREDENTIAL_VARIABLES = ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN")
_HOOK = r"[A-Za-z_][\w.]*:[A-Za-z_]\w*"


class Secret:
    """A string that never shows itself in repr/str/logs; `.reveal()` where it is really used. Every value one
    holds is known to `known_secrets`, so text the bundle does not write (an app hook's error) can be masked."""

    __slots__ = ("_value",)
    _known: set[str] = set()  # noqa: RUF012 - the process's secrets, as its settings were read (once per container)
    _short: set[str] = set()  # noqa: RUF012 - those under 6 characters: masked only where a setting's value is quoted

    def __init__(self, value: str) -> None:
        self._value = value
        # Shorter ones would mask common words (none of these secrets is that short in use; inside SCF, none may be)
        (Secret._known if len(value) >= 6 else Secret._short).add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> tuple[type, tuple[str]]:  # pickling is explicit revealing; keep it possible for processes
        return (Secret, (self._value,))


def known_secrets() -> tuple[str, ...]:
    """Every secret value this process has read (see Secret)."""
    return tuple(Secret._known)


# Every setting read as a Secret (test_config checks the list against the reads).
SECRET_SETTINGS = (
    "TENCENTCLOUD_SECRET_KEY",
    "VOD_SECRET_KEY",
    "TENCENTCLOUD_SECRETKEY",
    "TENCENTCLOUD_SESSIONTOKEN",
    "AUTH_JWT_SECRET",
    "AUTH_JWT_PUBLIC_KEY",
    "AUTH_GATEWAY_SECRET",
    "AUTH_JWT_SECRET_PREVIOUS",
    "AUTH_JWT_PUBLIC_KEY_PREVIOUS",
    "AUTH_GATEWAY_SECRET_PREVIOUS",
    "VOD_CALLBACK_SIGN_KEY",
    "VOD_CALLBACK_SIGN_KEY_PREVIOUS",
    "VOD_CONTEXT_KEY",
    "VOD_CONTEXT_KEY_PREVIOUS",
)


def note_secrets(environ: Mapping[str, str] | None = None) -> None:
    """Know every secret setting set in `environ` (default: the process environment), whether or not anything
    reads it as a Secret (the callback's VOD_SECRET_KEY when it asks VOD nothing; an SCF role's renewed keys;
    `vod-uploads hooks --rerun`), so that text quoting one (a hook's error, a relayed answer) is masked."""
    env = os.environ if environ is None else environ
    # Scans what is set rather than asking for each name: masking is not reading a setting (the deploy tests
    # list what a function reads, and each must be deployed).
    for name, value in env.items():
        if name in SECRET_SETTINGS and value.strip():
            Secret(value.strip())


class ConfigError(Exception):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        # A value quoted as it was read may be a secret put under the wrong name (a secret store's mapping off by
        # one): this text is logged, and is the failed cold start's exception.
        from shared.redaction import redact  # here: only a cold start that fails needs it

        # Origins are quoted lowercased; a list's items, split from a secret put in it, are pieces of it
        secrets = (*known_secrets(), *(secret.lower() for secret in known_secrets()))
        self.problems = [(name, redact(_quoted_pieces_masked(why), secrets)) for name, why in problems]
        lines = "\n".join(f"  {name}: {why}" for name, why in self.problems)
        super().__init__(f"invalid configuration ({len(problems)} problem(s)):\n{lines}")


def _quoted_pieces_masked(text: str) -> str:
    """`text` with each value it quotes (repr's way, 3 characters or more) masked where it is a piece of a secret: a
    list setting's item, split from a secret put in it; a short secret (allowed outside SCF)."""
    secrets = [repr(secret)[1:-1] for secret in (*Secret._known, *Secret._short)]

    def masked(match: re.Match[str]) -> str:
        quoted = match[1] or match[2]
        return "'********'" if any(quoted in secret or quoted in secret.lower() for secret in secrets) else match[0]

    # (compiled here: a cold start that fails is the one to pay for it)
    return re.sub(r"'((?:[^'\\]|\\.){3,})'|\"((?:[^\"\\]|\\.){3,})\"", masked, text) if secrets else text


class ColdStart:
    """`with ColdStart():` around what a function makes once per container from its settings: a ConfigError (a
    setting, the hook, a key) is also logged as one `config.invalid` line at ERROR, where operators search SCF's
    logs (its traceback is not one line), before it fails the cold start."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:  # raised all the same
        if isinstance(error, ConfigError):
            log_event(ERROR, "config.invalid", problems=[f"{name}: {why}" for name, why in error.problems])


class _Reader:
    """Reads variables, collecting problems instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ
        self.problems: list[tuple[str, str]] = []

    @property
    def environ(self) -> Mapping[str, str]:
        return self._env

    @property
    def in_scf(self) -> bool:
        return running_in_scf(self._env)

    def problem(self, name: str, why: str) -> None:
        if all(named != name for named, _ in self.problems):  # the first reason: an unreadable value is also unset
            self.problems.append((name, why))

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._env.get(name, "").strip()
        if not value.isascii():
            try:  # bytes that are not UTF-8 come from os.environ as lone surrogates, which no encoder takes
                value.encode("utf-8")
            except UnicodeEncodeError:
                self.problem(name, "is not valid UTF-8 text")
                return default
        return value if value else default

    def secret(self, name: str, *, min_length: int = 1) -> Secret | None:
        value = self.text(name)
        if value is None:
            return None
        if len(value) < min_length:
            self.problem(name, f"must be at least {min_length} characters")
        return Secret(value)

    def parsed(self, name: str, default: T, parse: Callable[[str], T], expect: str) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problem(name, f"must be {expect} (got {raw!r})")
            return default

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        value = self.parsed(name, default, _parse_int, "an integer")
        if value is not None and not low <= value <= high:
            self.problem(name, f"must be in {low}..{high} (got {value})")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self.parsed(name, default, _parse_bool, "true or false")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default) or default
        if value not in choices:
            self.problem(name, f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    def items(self, name: str) -> tuple[str, ...]:
        raw = self.text(name) or ""
        return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))

    def finish(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def _load(environ: Mapping[str, str] | None, read: Callable[[_Reader], T], *, function: bool = False) -> T:
    """Settings read by `read` from `environ` (default: the process environment); ConfigError naming every
    bad variable at once. A `function`'s also check LOG_LEVEL (log_level() took a bad one as INFO)."""
    r = _Reader(os.environ if environ is None else environ)
    note_secrets(r.environ)  # all of them, read or not: a secret one setting's path leaves unread is still masked
    settings = read(r)
    if function:
        _read_log_level(r)
    r.finish()
    return settings


def running_in_scf(environ: Mapping[str, str]) -> bool:
    """Inside a Tencent SCF instance (its runtime sets these), not a local run or a test."""
    return environ.get("TENCENTCLOUD_RUNENV") == "SCF" or any(environ.get(n) for n in SCF_BUILTIN_VARIABLES[1:])


def _parse_int(raw: str) -> int:
    # ASCII digits only: int() also takes "１２", "٣", "1_000" and "+5", which no setting is written as.
    # (Not a regex: compiling one is ~50 µs of a cold start.)
    digits = raw.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(raw)
    return int(raw)


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


class SigningPolicy(Record):
    """What the server puts into every signature; clients may only choose within the allow-lists."""

    secret_id: str
    secret_key: Secret
    sub_app_id: int | None
    ttl_seconds: int
    one_time: bool
    procedure: str | None
    allowed_procedures: frozenset[str]
    storage_region: str | None
    allowed_storage_regions: frozenset[str]
    class_id: int | None
    allowed_class_ids: frozenset[int]
    task_priority: int | None
    task_notify_mode: str | None


class ProxySettings(Record):
    """An http:// proxy that VOD's API (or an issuer's key set) is reached through: a CONNECT tunnel, TLS from end
    to end."""

    host: str  # a name or an IP address (no brackets)
    port: int
    authorization: Secret | None  # Proxy-Authorization, from the URL's user:password


class AuthSettings(Record):
    mode: AuthMode
    jwt_key: Secret | None
    jwt_algorithms: tuple[str, ...]
    jwt_audiences: tuple[str, ...] | None  # a token's aud names one of them (None: it names none)
    jwt_issuers: tuple[str, ...] | None  # its iss is one of them (None: not checked)
    jwt_leeway_seconds: int
    jwt_user_claim: str  # the claim that names the user (its value sealed into sourceContext)
    gateway_user_header: str
    gateway_secret_header: str
    gateway_secret: Secret | None
    # During a rotation: what the key (or the gateway's secret) before the current one signed still passes
    jwt_previous_key: Secret | None = None
    gateway_previous_secret: Secret | None = None
    # The issuer's JSON Web Key Set, by URL (instead of jwt_key): the key a token names by its kid
    jwt_jwks_url: str | None = None
    jwt_jwks_proxy: ProxySettings | None = None  # HTTPS_PROXY…, as the callback reads them for VOD's API


class HttpSettings(Record):
    cors: bool  # browsers on other origins call it (sign, uploads): it answers their preflights
    cors_allow_origins: tuple[str, ...]
    cors_allow_credentials: bool
    max_body_bytes: int


class ContextKeys(Record):
    """VOD_CONTEXT_KEY seals the uploader's id into sourceContext (shared.source_context); during a
    rotation the previous key still opens what it sealed."""

    current: Secret
    previous: Secret | None = None

    def all(self) -> tuple[str, ...]:
        return tuple(k.reveal() for k in (self.current, self.previous) if k is not None)


class SignSettings(Record):
    policy: SigningPolicy
    auth: AuthSettings
    http: HttpSettings
    context_key: Secret


class StoreSettings(Record):
    """Where upload records live; shared by the callback, the PULL and uploads functions, and `vod-uploads`."""

    database_url: Secret  # may carry a password
    timeout_seconds: int = DEFAULT_DATABASE_TIMEOUT


class UploadsSettings(Record):
    auth: AuthSettings
    http: HttpSettings
    store: StoreSettings
    max_wait_seconds: int  # ?wait=N is capped here (and the function's timeout must allow it)
    task_events: bool  # False: the signatures ask VOD for no task-flow events (VOD_TASK_NOTIFY_MODE=None)


class UploadPageSettings(Record):
    signature_url: str  # where the page asks for signatures (the sign function)
    status_url: str  # the uploads function ("" = the page shows no task progress)
    frame_ancestors: tuple[str, ...]  # origins that may embed the page and hand it a token
    http: HttpSettings
    user_claim: str = "sub"  # the token's claim that names its user (AUTH_JWT_USER_CLAIM, as the API reads it)
    language: str = "auto"  # one of PAGE_LANGUAGES, or "auto": the browser's (Accept-Language)


# The upload page's languages: those of functions/upload_page/static/messages.json (a test holds them equal)
PAGE_LANGUAGES = ("en", "zh-CN")


class VodApiSettings(Record):
    """Credentials and endpoint for VOD's cloud API (TC3-signed), used by the PULL function and
    `vod-configure-events`, and by the callback with VOD_CALLBACK_CONFIRM=fetch. SCF's execution-role
    variables are accepted as a fallback."""

    secret_id: str
    secret_key: Secret
    session_token: Secret | None
    renewed_role: bool  # SCF's execution role, inside SCF: SCF renews its keys in os.environ (shared/vod_cloud_api.py)
    endpoint: str  # host[:port]
    protocol: str  # "https" (Tencent) or "http" (the local emulator)
    region: str | None
    sub_app_id: int | None
    proxy: ProxySettings | None = None  # HTTPS_PROXY (shared.env_proxy), for shared.vod_cloud_api only


class PullSettings(Record):
    api: VodApiSettings
    store: StoreSettings
    context_keys: ContextKeys
    after_commit_hook: str | None
    reserve_seconds: int  # stop pulling this long before the invocation's time limit
    budget_seconds: int  # run time when the context gives no time limit
    until_empty: bool  # a run ends at the first empty answer (else it long-polls until the reserve)


class CallbackSettings(Record):
    sign_key: Secret | None
    max_ahead_seconds: int
    store: StoreSettings
    http: HttpSettings
    context_keys: ContextKeys
    previous_sign_key: Secret | None = None  # during a SignKey rotation: deliveries signed with it pass too
    after_commit_hook: str | None = None  # "package.module:function", resolved by shared.hooks
    confirm_api: VodApiSettings | None = None  # VOD_CALLBACK_CONFIRM=fetch: ask VOD, don't trust the body


def _allowed(default: T | None, allowed: tuple[T, ...]) -> frozenset[T]:
    # The default is always allowed: listing it twice is noise, forgetting it a foot-gun.
    return frozenset(allowed) | ({default} if default is not None else set())


def _int_items(r: _Reader, name: str, low: int, high: int) -> tuple[int, ...]:
    values = []
    for item in r.items(name):
        try:
            value = _parse_int(item)
        except ValueError:
            r.problem(name, f"{item!r} is not an integer")
            continue
        if not low <= value <= high:
            r.problem(name, f"{value} is not in {low}..{high}")
        values.append(value)
    return tuple(values)


def _region(r: _Reader, name: str, value: str | None) -> None:
    if value is not None and not re.fullmatch(_REGION, value):
        r.problem(name, f"is not a storage region like ap-guangzhou (got {value!r})")


_KEY_PAIRS = (("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"), ("VOD_SECRET_ID", "VOD_SECRET_KEY"))


def _check_secret_key(r: _Reader, name: str, key: Secret | None) -> None:
    """A SecretKey as the console shows it: letters and digits. A space or an invisible character pasted with it (not
    quoted here: it is the secret) would pass the cold start, then make every signature one VOD refuses."""
    value = key.reveal() if key is not None else ""
    if value and not (value.isascii() and value.isprintable() and " " not in value):
        r.problem(name, "must be the SecretKey as the console shows it (no spaces or invisible characters)")


def _account_keys(r: _Reader) -> tuple[str | None, Secret | None]:
    """The account's API key pair: TENCENTCLOUD_SECRET_ID/KEY, or VOD_SECRET_ID/KEY (SCF reserves
    environment names starting with TENCENTCLOUD_ for its own use, so deployed functions use these)."""
    for id_name, key_name in _KEY_PAIRS:
        secret_id, secret_key = r.text(id_name), r.secret(key_name)
        # AKID and letters and digits: a space or an invisible character pasted with it would pass the cold start,
        # then fail every signature as the client's fault, or every VOD API call. And AKID first: the two swapped
        # would put the SecretKey in every signature, which its callers can read.
        if secret_id and not (
            secret_id.startswith("AKID") and secret_id.isascii() and secret_id.isprintable() and " " not in secret_id
        ):
            r.problem(id_name, f"must be the SecretId as the console shows it (AKID…, no spaces; is it {key_name}'s?)")
        _check_secret_key(r, key_name, secret_key)
        if secret_id and secret_key:
            return secret_id, secret_key
        if secret_id or secret_key:
            missing, given = (key_name, id_name) if secret_id else (id_name, key_name)
            r.problem(missing, f"is required together with {given}")
    return None, None


def _read_policy(r: _Reader) -> SigningPolicy:
    named = len(r.problems)
    secret_id, secret_key = _account_keys(r)
    if secret_id is None and len(r.problems) == named:  # else a half pair is named
        r.problem(
            "TENCENTCLOUD_SECRET_ID",
            "is required with TENCENTCLOUD_SECRET_KEY (in SCF: VOD_SECRET_ID and "
            "VOD_SECRET_KEY, as TENCENTCLOUD_* names are reserved there)",
        )
    procedure = r.text("VOD_PROCEDURE")
    region = r.text("VOD_STORAGE_REGION")
    regions = r.items("VOD_ALLOWED_STORAGE_REGIONS")
    for name, value in [("VOD_STORAGE_REGION", region), *(("VOD_ALLOWED_STORAGE_REGIONS", v) for v in regions)]:
        _region(r, name, value)
    if regions and region is None:  # a signature naming no region lets ApplyUploadUGC choose any
        r.problem("VOD_ALLOWED_STORAGE_REGIONS", "needs VOD_STORAGE_REGION, the region of a request that names none")
    class_id = r.integer("VOD_CLASS_ID", None, 0, _MAX_CLASS_ID)
    class_ids = _int_items(r, "VOD_ALLOWED_CLASS_IDS", 0, _MAX_CLASS_ID)
    notify = _notify_mode(r)
    return SigningPolicy(
        secret_id=secret_id or "",
        secret_key=secret_key or Secret(""),
        sub_app_id=_sub_app_id(r),
        ttl_seconds=r.integer("VOD_SIGNATURE_TTL", 600, 1, MAX_VALIDITY_SECONDS) or 600,
        one_time=r.boolean("VOD_ONE_TIME", True),
        procedure=procedure,
        allowed_procedures=_allowed(procedure, r.items("VOD_ALLOWED_PROCEDURES")),
        storage_region=region,
        allowed_storage_regions=_allowed(region, regions),
        class_id=class_id,
        allowed_class_ids=_allowed(class_id, class_ids),
        task_priority=r.integer("VOD_TASK_PRIORITY", None, -10, 10),
        task_notify_mode=notify,
    )


_KEY_SETTINGS = ("AUTH_JWT_SECRET", "AUTH_JWT_PUBLIC_KEY", "AUTH_JWT_JWKS_URL")


def _read_jwt(r: _Reader) -> tuple[Secret | None, Secret | None, tuple[str, ...], str | None]:
    """The key tokens are verified with, the previous one (a rotation's: its tokens still pass), the algorithms;
    or, instead of the keys, the URL of the issuer's key set."""
    secret = r.secret("AUTH_JWT_SECRET")  # its length: below, per algorithm
    public_key = r.secret("AUTH_JWT_PUBLIC_KEY")
    jwks_url = r.text("AUTH_JWT_JWKS_URL")
    previous_secret = r.secret("AUTH_JWT_SECRET_PREVIOUS")
    previous_public_key = r.secret("AUTH_JWT_PUBLIC_KEY_PREVIOUS")
    if [secret, public_key, jwks_url].count(None) != 2:
        r.problem("AUTH_JWT_SECRET", f"set exactly one of {', '.join(_KEY_SETTINGS)} when AUTH_MODE=jwt")
        return None, None, (), None
    family = tuple(_SYMMETRIC_ALGS) if secret is not None else _ASYMMETRIC_ALGS
    algorithms = r.items("AUTH_JWT_ALGORITHMS") or (family[0],)
    wrong = [alg for alg in algorithms if alg not in family]
    if wrong:
        # Pinning the family to the key type is what stops algorithm-confusion attacks. (Each item quoted, as other
        # lists' are: a secret set here by mistake is then masked piece by piece.)
        named = ", ".join(map(repr, wrong))
        r.problem("AUTH_JWT_ALGORITHMS", f"{named} cannot be used with this key; choose from {', '.join(family)}")
    if jwks_url is not None:
        olds = {"AUTH_JWT_SECRET_PREVIOUS": previous_secret, "AUTH_JWT_PUBLIC_KEY_PREVIOUS": previous_public_key}
        _check_jwks_url(r, jwks_url, [name for name, key in olds.items() if key is not None])
        return None, None, algorithms, jwks_url
    symmetric = secret is not None
    kind, other = "AUTH_JWT_SECRET", "AUTH_JWT_PUBLIC_KEY"
    if not symmetric:
        kind, other = other, kind
    key, previous = (secret, previous_secret) if symmetric else (public_key, previous_public_key)
    if (previous_public_key if symmetric else previous_secret) is not None:
        r.problem(f"{other}_PREVIOUS", f"tokens are verified with {kind}, whose previous key goes in {kind}_PREVIOUS")
    if previous is not None and key is not None and previous.reveal() == key.reveal():
        r.problem(f"{kind}_PREVIOUS", f"is the same key as {kind} (a rotation's previous key is the one it replaced)")
    for name, value in ((kind, key), (f"{kind}_PREVIOUS", previous)):
        if value is not None and symmetric:
            _check_jwt_secret(r, name, value, algorithms)
        elif value is not None:
            _check_public_key(r, name, value)
    return key, previous, algorithms, jwks_url


def _check_jwks_url(r: _Reader, url: str, previous_keys: list[str]) -> None:
    from urllib.parse import urlsplit  # here only: a JWKS URL is rare, and urllib.parse ~1.5 ms of a cold start

    for name in previous_keys:
        r.problem(name, "is not used with AUTH_JWT_JWKS_URL: the issuer's key set holds every key it signs with")
    if not r.items("AUTH_JWT_ISSUER"):  # Firebase's keys sign every project's tokens, Entra's every tenant's
        r.problem("AUTH_JWT_ISSUER", "is required with AUTH_JWT_JWKS_URL: an issuer's keys may sign other apps' tokens")
    try:
        parts = urlsplit(url)
        host = parts.netloc
    except ValueError:
        parts, host = None, ""
    if parts is None or not parts.hostname or parts.scheme not in ("https", "http"):
        r.problem("AUTH_JWT_JWKS_URL", "must be an https:// URL (the issuer's jwks_uri)")
    elif "@" in host:
        r.problem("AUTH_JWT_JWKS_URL", "must not hold a user or password (an issuer's key set is public)")
    elif parts.scheme == "http" and not is_loopback_host(host):
        # Over http, whoever is on the way could hand the function keys of their own, and sign in as anyone
        r.problem("AUTH_JWT_JWKS_URL", "may use http:// only on loopback (a local issuer): use https://")


def _check_jwt_secret(r: _Reader, name: str, secret: Secret, algorithms: tuple[str, ...]) -> None:
    # RFC 7518 §3.2: a key at least the hash's size, for the strongest algorithm allowed
    alg = max((a for a in algorithms if a in _SYMMETRIC_ALGS), key=_SYMMETRIC_ALGS.__getitem__, default="HS256")
    if len(secret.reveal().encode()) < _SYMMETRIC_ALGS[alg]:
        r.problem(name, f"must be at least {_SYMMETRIC_ALGS[alg]} bytes for {alg}")
    from shared.hs_jwt import refused_secret  # here only: the functions that verify tokens with it

    why = refused_secret(secret.reveal().encode())
    if why:  # a public key as the shared secret would let anyone mint tokens (algorithm confusion)
        r.problem(name, f"{why}: an HMAC secret must be random bytes")
    if r.environ[name] != secret.reveal():  # read trimmed, as every setting is; signed untrimmed
        r.problem(name, "starts or ends with whitespace: remove it (here, and in the issuer's key)")


def _check_public_key(r: _Reader, name: str, public_key: Secret) -> None:
    pem = public_key.reveal()
    if "PRIVATE KEY" in pem:  # PyJWT would take it, and fail each token
        r.problem(name, "holds a private key: give the public key alone (the other signs tokens)")
    elif not re.search(r"-----BEGIN (RSA )?PUBLIC KEY-----", pem):
        r.problem(name, "must be a PEM public key (-----BEGIN PUBLIC KEY----- or RSA PUBLIC KEY)")
    elif pem.count("-----BEGIN") > 1:  # only the first would verify tokens: the others' would all be refused
        r.problem(
            name, "holds more than one key: give one (during a rotation, the old one in AUTH_JWT_PUBLIC_KEY_PREVIOUS)"
        )


def is_header_value(text: str) -> bool:
    """What a header may carry as it is: a line break in it would make a client refuse the call, quoting it."""
    return text.isascii() and text.isprintable()


def is_header_name(text: str) -> bool:
    """[A-Za-z0-9-]{1,64}, with string methods: compiling the pattern is ~0.1 ms of the sign function's cold start."""
    return 0 < len(text) <= 64 and text.isascii() and text.replace("-", "a").isalnum()


def _read_auth(r: _Reader) -> AuthSettings:
    mode = r.choice("AUTH_MODE", "jwt", ("jwt", "gateway", "none"))
    key, previous_key, algorithms, jwks_url = _read_jwt(r) if mode == "jwt" else (None, None, (), None)
    user_header = r.text("AUTH_GATEWAY_USER_HEADER", "X-User-Id") or ""
    secret_header = r.text("AUTH_GATEWAY_SECRET_HEADER", "X-Gateway-Secret") or ""
    for name, header in (("AUTH_GATEWAY_USER_HEADER", user_header), ("AUTH_GATEWAY_SECRET_HEADER", secret_header)):
        if not is_header_name(header):
            r.problem(name, f"is not an HTTP header name (got {header!r})")
    if user_header.lower() == secret_header.lower():  # the secret would be taken for the user's id (and logged)
        r.problem("AUTH_GATEWAY_USER_HEADER", "must differ from AUTH_GATEWAY_SECRET_HEADER")
    gateway_secret = r.secret("AUTH_GATEWAY_SECRET", min_length=16)
    if mode == "gateway" and gateway_secret is None:
        r.problem("AUTH_GATEWAY_SECRET", "is required when AUTH_MODE=gateway")
    previous_gateway_secret = r.secret("AUTH_GATEWAY_SECRET_PREVIOUS", min_length=16)
    if previous_gateway_secret is not None:
        if gateway_secret is None:
            r.problem("AUTH_GATEWAY_SECRET_PREVIOUS", "is for a rotation of AUTH_GATEWAY_SECRET, which is not set")
        elif previous_gateway_secret.reveal() == gateway_secret.reveal():
            r.problem(
                "AUTH_GATEWAY_SECRET_PREVIOUS",
                "is the same as AUTH_GATEWAY_SECRET (a rotation's previous secret is the one it replaced)",
            )
    if mode == "none" and r.in_scf:  # a public function URL would sign for anyone, and list every upload
        r.problem("AUTH_MODE", "none is for local development only: inside SCF every caller must be authenticated")
    elif mode == "none":
        log_event(WARNING, "config.auth_disabled", detail="AUTH_MODE=none: no caller is authenticated")
    return AuthSettings(
        mode=mode,  # type: ignore[arg-type]
        jwt_key=key,
        jwt_algorithms=algorithms,
        jwt_audiences=r.items("AUTH_JWT_AUDIENCE") or None,
        jwt_issuers=r.items("AUTH_JWT_ISSUER") or None,
        jwt_leeway_seconds=r.integer("AUTH_JWT_LEEWAY", 30, 0, 300) or 0,
        jwt_user_claim=_read_user_claim(r),
        gateway_user_header=user_header,
        gateway_secret_header=secret_header,
        gateway_secret=gateway_secret,
        jwt_previous_key=previous_key,
        gateway_previous_secret=previous_gateway_secret,
        jwt_jwks_url=jwks_url,
        jwt_jwks_proxy=_jwks_proxy(r, jwks_url),
    )


def _jwks_proxy(r: _Reader, url: str | None) -> ProxySettings | None:
    """The proxy the issuer's key set is read through: the one the callback would take to its host (http://, on
    loopback only, none)."""
    if url is None:
        return None
    from urllib.parse import urlsplit  # here: urllib.parse is ~1.5 ms of a cold start

    try:
        parts = urlsplit(url)
    except ValueError:  # refused by _check_jwks_url
        return None
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        return None
    return _read_proxy(r, parts.netloc.lower(), sdk=False, setting="AUTH_JWT_JWKS_URL", what="the issuer's key set")


# What a claim naming the user cannot be: the token's times, audience, issuer, its own id (each token a new user)
_NOT_A_USER_CLAIM = ("exp", "nbf", "iat", "aud", "iss", "jti")


def _read_user_claim(r: _Reader) -> str:
    claim = r.text("AUTH_JWT_USER_CLAIM", "sub") or "sub"
    if claim in _NOT_A_USER_CLAIM:
        r.problem("AUTH_JWT_USER_CLAIM", f"must name the user, not the token's {claim} (sub, oid, uid, ...)")
    elif not claim.isascii() or not claim.isprintable() or " " in claim or len(claim) > 64:
        r.problem("AUTH_JWT_USER_CLAIM", "must be a claim's name: up to 64 printable ASCII characters, no space")
    return claim


_ORIGIN = r"https?://[A-Za-z0-9.-]+(:[1-9][0-9]{0,4})?"  # no leading zero: a browser never writes one


def _matches_with_port(pattern: str, text: str, port_group: int = 1) -> bool:
    """`text` is all `pattern`, and the port in `port_group` (":N", if any) is one a URL can have."""
    match = re.fullmatch(pattern, text)
    return match is not None and int((match[port_group] or ":0")[1:]) <= 65535


def _canonical_origin(origin: str) -> str:
    """As a browser writes an origin (lowercase, no default port): CORS and the page's postMessage check
    compare the browser's Origin with these strings exactly."""
    origin = origin.lower()
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if origin.startswith(scheme) and origin.endswith(port):
            return origin.removesuffix(port)
    return origin


def _warn_of_cleartext(name: str, urls: Iterable[str]) -> None:
    """Warn of http:// URLs to other machines than this one: whoever is on the way reads and rewrites what they
    carry (users' tokens, or the page that holds them). Allowed, as on a LAN during development."""
    cleartext = [u for u in urls if u[:7].lower() == "http://" and not is_loopback_host(u[7:].split("/", 1)[0])]
    if cleartext:
        log_event(WARNING, "config.cleartext_url", detail=f"{name}: {', '.join(cleartext)} is not https://")


def _read_origins(r: _Reader, name: str, *, allow_any: bool = False) -> tuple[str, ...]:
    """A comma-separated list of origins, as browsers write them (they go into headers and a CSP)."""
    origins = tuple(o if o == "*" else _canonical_origin(o) for o in r.items(name))
    for origin in origins:
        if not (_matches_with_port(_ORIGIN, origin) or (allow_any and origin == "*")):
            r.problem(name, f"{origin!r} is not an origin like https://app.example.com")
    _warn_of_cleartext(name, [o for o in origins if _matches_with_port(_ORIGIN, o)])  # refused ones go masked
    return origins


def _read_http(r: _Reader, default_max_body: int, *, cors: bool = True) -> HttpSettings:
    """cors=False for endpoints no browser on another origin calls (VOD's callback, the page): no CORS settings."""
    origins = _read_origins(r, "CORS_ALLOW_ORIGINS", allow_any=True) if cors else ()
    credentials = r.boolean("CORS_ALLOW_CREDENTIALS", False) if cors else False
    if "*" in origins and credentials:
        r.problem("CORS_ALLOW_CREDENTIALS", "cannot be true while CORS_ALLOW_ORIGINS contains '*'")
    return HttpSettings(
        cors=cors,
        cors_allow_origins=origins,
        cors_allow_credentials=credentials,
        max_body_bytes=r.integer("HTTP_MAX_BODY_BYTES", default_max_body, 256, 64 * 1024 * 1024) or default_max_body,
    )


def database_url_problem(url: str) -> str | None:
    """What is wrong with a DATABASE_URL, never quoting it (a PostgreSQL URL may carry a password)."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path or path.startswith(":memory:") or "?" in path:
            return "sqlite:/// needs a file path (no :memory:, no query string)"
        return None
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres_url_problem(url)
    return "must start with sqlite:/// or postgresql:// (or postgres://)"


_HEX = frozenset("0123456789abcdefABCDEF")


def _postgres_url_problem(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit  # here: only database settings parse a URL (~1.5 ms of a cold start)

    try:
        parts = urlsplit(url)  # raises on an unencoded [ or ] (taken for an IPv6 address)
        hosts = parts.netloc.rpartition("@")[2].split(",")  # libpq takes several, to try in turn
        if len(hosts) == 1:
            parts.port  # noqa: B018 - parses the authority, raising on a malformed one
        elif not all(_whole_number(host.rpartition("]")[2].partition(":")[2], port=True) for host in hosts):
            raise ValueError("a host's port")
    except ValueError:
        return "is not a valid postgresql:// URL (check the port and percent-encoding)"
    if any(len(after) < 2 or not all(c in _HEX for c in after[:2]) for after in url.split("%")[1:]):
        return "has a % that starts no escape: write a % itself as %25"  # libpq refuses it on every connection
    if "%00" in url:
        return "has %00 (a NUL), which libpq refuses"
    try:
        unquote(url, errors="strict")
    except UnicodeDecodeError:  # psycopg2 decodes what libpq unescapes as UTF-8: it would fail every connection
        return "has a percent-escape that is not UTF-8 (write each character's UTF-8 bytes, as %C3%A9 for é)"
    if parts.netloc.count("@") > 1:  # libpq would split it elsewhere and quote a piece of it
        return "has an unencoded '@' in its user or password: write it as %40"
    return _as_libpq_reads_it(url)


# libpq's own values for these (libpq's "Parameter Key Words"); any other fails every connection.
_ENUMERATED = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "gssencmode": ("disable", "prefer", "require"),
    "channel_binding": ("disable", "prefer", "require"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
}
_WHOLE_NUMBERS = (
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
)


def _as_libpq_reads_it(url: str) -> str | None:
    """What libpq would refuse at every connection (so every event a 503, for good), or read otherwise than
    urllib does (so the password could not be found to be hidden). Never quotes the URL: a mistyped one may
    have its password anywhere."""
    if "#" in url:  # no part of a connection URL; urllib would cut the URL there, libpq would not
        return "has an unencoded '#': write it as %23"
    rest = url.partition("://")[2]
    # libpq's user and password end at the first '@' before any '/' (urllib's also at a '?')
    end = min((i for i in (rest.find("@"), rest.find("/")) if i >= 0), default=-1)
    if end >= 0 and rest[end] == "@" and "?" in rest[:end]:
        return "has an unencoded '?' in its user or password: write it as %3F"
    database = rest.partition("?")[0][end + 1 :] if end >= 0 and rest[end] == "/" else ""
    if "@" in database and "/" in database:  # what a '/' in a password leaves: libpq reads a host before it
        return "has an unencoded '/' in its user or password (libpq reads the host before it): write it as %2F"
    query = rest.partition("?")[2].removesuffix("&")  # libpq takes one '&' at the end
    if query and any(item.count("=") != 1 for item in query.split("&")):
        return "has a query parameter that is not one key=value: inside a value write & as %26 and = as %3D"
    return _libpq_options_problem(url)


def _libpq_options_problem(url: str) -> str | None:
    try:
        from psycopg2.extensions import parse_dsn  # libpq's own reading; the store imports it anyway
    except ImportError:  # no PostgreSQL driver: the store says so
        return None
    try:
        options = parse_dsn(url)
    except Exception:  # psycopg2.ProgrammingError; its message may quote the password
        return "has a query parameter libpq does not know (see libpq's Parameter Key Words)"
    for key, allowed in _ENUMERATED.items():
        if key in options and options[key] not in allowed:
            return f"{key} must be one of {', '.join(allowed)}"
    for key in _WHOLE_NUMBERS:  # a port for each host, comma-separated
        if key in options and not all(_whole_number(part, port=key == "port") for part in options[key].split(",")):
            return f"{key} must be a whole number" + (" from 1 to 65535" if key == "port" else "")
    return _host_lists_problem(options)


def _host_lists_problem(options: dict[str, str]) -> str | None:
    """libpq's matching of its comma-separated lists (connectOptions2): as many hosts as hostaddrs when both are
    given, and one port for all or one for each."""
    counts = {name: len(options[name].split(",")) for name in ("host", "hostaddr", "port") if options.get(name)}
    if not counts.keys() & {"host", "hostaddr"} or options.get("service"):
        return None  # the hosts may come from PGHOST, PGHOSTADDR or a service file: libpq's to judge
    hosts = counts.get("hostaddr", counts.get("host", 1))
    if counts.get("host", hosts) != hosts:
        return f"lists {counts['host']} host(s) and {hosts} hostaddr value(s): libpq needs one of each for each server"
    if counts.get("port", 1) not in (1, hosts):
        return f"lists {counts['port']} ports for {hosts} host(s): give one port for all, or one for each"
    return None


def _whole_number(text: str, *, port: bool = False) -> bool:
    """As libpq reads a number (strtol): C whitespace around it, one sign, an int; a port 1..65535, or nothing
    at all for the default."""
    if port and text == "":
        return True
    text = text.strip(" \t\n\v\f\r")
    digits = text[1:] if text[:1] in ("+", "-") else text
    # Past 10 digits (leading zeros aside) out of range anyway; and Python refuses to read 4,300, zeros and all
    significant = digits.lstrip("0") or "0"
    if not (digits.isascii() and digits.isdigit()) or len(significant) > 10:
        return False
    value = -int(significant) if text[:1] == "-" else int(significant)
    return 1 <= value <= 65535 if port else -(2**31) <= value < 2**31


def _database_passwords(url: str) -> set[str]:
    """Every form of the DATABASE_URL `url`'s password: user:pass@, libpq's ?password= and ?sslpassword=, as
    written and percent-decoded."""
    from urllib.parse import unquote, unquote_plus, urlsplit

    parts = urlsplit(url)
    found = [parts.netloc.rpartition("@")[0].partition(":")[2]]
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if unquote_plus(key) in ("password", "sslpassword"):
            found.append(value)
    return {form for raw in found for form in (raw, unquote(raw), unquote_plus(raw))} - {""}


def hide_database_password(text: str, url: str) -> str:
    """`text` (the URL itself, or a message quoting it) with every form of the DATABASE_URL `url`'s password
    masked."""
    for secret in sorted(_database_passwords(url), key=len, reverse=True):  # longest first: none half-masked
        if len(secret) >= 6:
            text = text.replace(secret, "********")
        else:  # as Secret: a short one would mask words ("p" of "port", "on"): masked where a URL or DSN holds it
            text = re.sub(rf"(?<=[:='\"]){re.escape(secret)}(?!\w)", "********", text)
    return text


def _read_store(r: _Reader) -> StoreSettings:
    url = r.text("DATABASE_URL")
    if r.in_scf and (url is None or url.startswith("sqlite:")):
        # SQLite in SCF would be a file on an instance's disk, gone with the instance (and the code
        # directory is read-only): every event would get 503, or be acknowledged and then lost.
        r.problem(
            "DATABASE_URL",
            "must be a postgresql:// URL inside SCF (instance disks are not durable; "
            f"got {'nothing' if url is None else 'a sqlite: URL'})",
        )
    url = url or DEFAULT_DATABASE_URL
    problem = database_url_problem(url)
    if problem:
        r.problem("DATABASE_URL", problem)
    else:  # its password alone is a known secret too: a hook's error may quote it in a DSN of its own
        for password in _database_passwords(url):
            Secret(password)
    timeout = r.integer("DATABASE_TIMEOUT", DEFAULT_DATABASE_TIMEOUT, 1, 60) or DEFAULT_DATABASE_TIMEOUT
    # Not a known secret when refused (its problem never quotes it): "postgres" would mask the hint's words
    return StoreSettings(database_url=Secret("" if problem else url), timeout_seconds=timeout)


def _read_hook(r: _Reader) -> str | None:
    hook = r.text("AFTER_COMMIT_HOOK")
    if hook is not None and not re.fullmatch(_HOOK, hook):
        r.problem("AFTER_COMMIT_HOOK", f"must be package.module:function (got {hook!r})")
    return hook


def after_commit_hook(environ: Mapping[str, str] | None = None) -> str | None:
    """AFTER_COMMIT_HOOK alone, validated (the build puts its package into the bundles that run it)."""
    return _load(environ, _read_hook)


def callback_sign_key(environ: Mapping[str, str] | None = None) -> Secret | None:
    """VOD_CALLBACK_SIGN_KEY alone, validated (`vod-configure-events` sends it as VOD's SignKey)."""
    return _load(environ, _read_sign_key)


def _read_sign_key(r: _Reader) -> Secret | None:
    return _checked_sign_key(r, "VOD_CALLBACK_SIGN_KEY", r.secret("VOD_CALLBACK_SIGN_KEY"))


def _checked_sign_key(r: _Reader, name: str, sign_key: Secret | None) -> Secret | None:
    if sign_key is not None and not re.fullmatch(_SIGN_KEY, sign_key.reveal()):
        r.problem(name, "must be 1..32 letters and digits (as VOD's SignKey)")
    elif sign_key is not None and r.in_scf and len(sign_key.reveal()) < MIN_DEPLOYED_SIGN_KEY:
        # Sign = MD5(SignKey + T): from one delivery, a short key is found by trying, and then any event forged.
        r.problem(name, f"must be at least {MIN_DEPLOYED_SIGN_KEY} characters inside SCF")
    return sign_key


def load_store_settings(environ: Mapping[str, str] | None = None) -> StoreSettings:
    return _load(environ, _read_store)


def log_level(environ: Mapping[str, str] | None = None) -> str:
    """LOG_LEVEL, read before the other settings so that their warnings are logged at that level. A bad one
    is INFO here, so that the load that follows names it together with every other bad variable."""
    level = _read_log_level(_Reader(os.environ if environ is None else environ))
    return level if level in LEVELS else "INFO"


def _read_log_level(r: _Reader) -> str:
    level = (r.text("LOG_LEVEL") or "INFO").upper()
    level = "WARNING" if level == "WARN" else level  # Python's logging and most loggers take both
    if level not in LEVELS:
        r.problem("LOG_LEVEL", f"must be one of {', '.join(LEVELS)} (got {r.text('LOG_LEVEL')!r})")
    return level


def _read_context_keys(r: _Reader) -> ContextKeys:
    current = r.secret("VOD_CONTEXT_KEY", min_length=32)
    previous = r.secret("VOD_CONTEXT_KEY_PREVIOUS", min_length=32)
    if current is None:
        r.problem(
            "VOD_CONTEXT_KEY",
            "is required (≥ 32 characters, the same for sign, callback and events_pull): "
            "it seals the uploader's id into sourceContext",
        )
    account_keys = {r.text(name) for name in ("TENCENTCLOUD_SECRET_KEY", "VOD_SECRET_KEY")} - {None}
    for name, key in (("VOD_CONTEXT_KEY", current), ("VOD_CONTEXT_KEY_PREVIOUS", previous)):
        if key is not None and key.reveal() in account_keys:
            r.problem(name, "must not be the VOD SecretKey (a key of its own, shared by the functions)")
    if previous is not None and current is not None and previous.reveal() == current.reveal():
        # The rotation's first step with the old key in both: the new one, sealing next, would open nothing
        r.problem(
            "VOD_CONTEXT_KEY_PREVIOUS",
            "is the same key as VOD_CONTEXT_KEY (a rotation holds two: the new one here, then the old one)",
        )
    return ContextKeys(current or Secret(""), previous)


def load_sign_settings(environ: Mapping[str, str] | None = None) -> SignSettings:
    return _load(environ, _read_sign, function=True)


def _read_sign(r: _Reader) -> SignSettings:
    return SignSettings(
        policy=_read_policy(r),
        auth=_read_auth(r),
        # sessionContext may be 1000 characters, 12 bytes each as JSON escapes an astral one (\ud83d\ude00).
        http=_read_http(r, 16 * 1024),
        context_key=_read_context_keys(r).current,
    )


def _sub_app_id(r: _Reader) -> int | None:
    # 0 names the primary application, as no id does (VOD's signature page): sent as none
    return r.integer("VOD_SUB_APP_ID", None, 0, 2**63 - 1) or None


def _notify_mode(r: _Reader) -> str | None:
    notify = r.text("VOD_TASK_NOTIFY_MODE")
    if notify is not None and notify not in TASK_NOTIFY_MODES:
        r.problem("VOD_TASK_NOTIFY_MODE", f"must be one of {', '.join(TASK_NOTIFY_MODES)} (got {notify!r})")
    return notify


def load_uploads_settings(environ: Mapping[str, str] | None = None) -> UploadsSettings:
    """The uploads (status) function: authenticated exactly like the sign function, reading the store."""
    return _load(environ, _read_uploads, function=True)


def _read_uploads(r: _Reader) -> UploadsSettings:
    return UploadsSettings(
        auth=_read_auth(r),
        http=_read_http(r, 1024),
        store=_read_store(r),
        max_wait_seconds=r.integer("UPLOADS_MAX_WAIT_SECONDS", MAX_WAIT_SECONDS, 0, MAX_WAIT_SECONDS) or 0,
        task_events=_notify_mode(r) != "None",
    )


# A path on the page's own host (never //host: that would be another host, outside the CSP's list) or a URL,
# with or without a path (a function URL is the host alone).
_PAGE_URL = r"https?://[A-Za-z0-9.-]+(:[1-9][0-9]{0,4})?(/(?!/)[A-Za-z0-9._~/%-]*)?|/(?!/)[A-Za-z0-9._~/%-]*"


def load_upload_page_settings(environ: Mapping[str, str] | None = None) -> UploadPageSettings:
    """The upload page: where its API lives and who may embed it. The values go into the page and its
    Content-Security-Policy, so only plain URLs and origins are accepted."""
    return _load(environ, _read_upload_page, function=True)


def _read_upload_page(r: _Reader) -> UploadPageSettings:
    urls = {}
    for name, default in (("UPLOAD_PAGE_SIGNATURE_URL", "/signature"), ("UPLOAD_PAGE_STATUS_URL", "/uploads")):
        value = r.text(name, default) or default
        if value != "none" and not _matches_with_port(_PAGE_URL, value):
            r.problem(
                name, f"must be a path like /signature or a URL like https://api.example.com/signature (got {value!r})"
            )
        else:  # a refused one is quoted masked, by the ConfigError (it may hold a password, or be a secret)
            _warn_of_cleartext(name, [value])
        urls[name] = value
    ancestors = _read_origins(r, "UPLOAD_PAGE_FRAME_ANCESTORS")
    if urls["UPLOAD_PAGE_SIGNATURE_URL"] == "none":
        r.problem("UPLOAD_PAGE_SIGNATURE_URL", "is required: the page cannot upload without signatures")
    return UploadPageSettings(
        signature_url=urls["UPLOAD_PAGE_SIGNATURE_URL"],
        status_url="" if urls["UPLOAD_PAGE_STATUS_URL"] == "none" else urls["UPLOAD_PAGE_STATUS_URL"],
        frame_ancestors=ancestors,
        # GETs only, from the page's own origin: no settings
        http=HttpSettings(cors=False, cors_allow_origins=(), cors_allow_credentials=False, max_body_bytes=1024),
        user_claim=_read_user_claim(r),
        language=_read_page_language(r),
    )


def _read_page_language(r: _Reader) -> str:
    value = r.text("UPLOAD_PAGE_LANGUAGE", "auto") or "auto"
    # Language tags are case-insensitive (RFC 5646): zh-cn is zh-CN
    named = next((known for known in ("auto", *PAGE_LANGUAGES) if known.lower() == value.lower()), None)
    if named is None:
        r.problem("UPLOAD_PAGE_LANGUAGE", f"must be one of auto, {', '.join(PAGE_LANGUAGES)} (got {value!r})")
    return named or "auto"


def load_callback_settings(environ: Mapping[str, str] | None = None) -> CallbackSettings:
    return _load(environ, _read_callback, function=True)


def _read_callback(r: _Reader) -> CallbackSettings:
    sign_key = _read_sign_key(r)
    previous_sign_key = _checked_sign_key(
        r, "VOD_CALLBACK_SIGN_KEY_PREVIOUS", r.secret("VOD_CALLBACK_SIGN_KEY_PREVIOUS")
    )
    if previous_sign_key is not None and sign_key is None:
        r.problem("VOD_CALLBACK_SIGN_KEY_PREVIOUS", "is for a SignKey rotation: set VOD_CALLBACK_SIGN_KEY too")
    elif previous_sign_key is not None and sign_key is not None and previous_sign_key.reveal() == sign_key.reveal():
        r.problem(
            "VOD_CALLBACK_SIGN_KEY_PREVIOUS",
            "is the same key as VOD_CALLBACK_SIGN_KEY (a rotation's previous key is the one it replaced)",
        )
    insecure = r.boolean("VOD_CALLBACK_INSECURE", False)
    if insecure and r.in_scf:
        r.problem("VOD_CALLBACK_INSECURE", "is for local development only: inside SCF every event must be verified")
    if insecure and sign_key is not None:
        r.problem("VOD_CALLBACK_INSECURE", "cannot be true while VOD_CALLBACK_SIGN_KEY is set (it would go unchecked)")
    if sign_key is None and not insecure:
        r.problem("VOD_CALLBACK_SIGN_KEY", "is required (or set VOD_CALLBACK_INSECURE=true for local development)")
    if sign_key is None and insecure:
        log_event(
            WARNING,
            "config.callback_unverified",
            detail="VOD_CALLBACK_INSECURE=true: events are not verified",
        )
    # SCF takes requests up to 6 MB: a genuine (large, AI-result) event is never refused below that.
    http = _read_http(r, CALLBACK_MAX_BODY_BYTES, cors=False)
    if http.max_body_bytes < CALLBACK_MAX_BODY_BYTES:  # its 413s are logged at INFO: their Sign is not checked
        log_event(
            WARNING,
            "config.callback_body_limit",
            detail=f"HTTP_MAX_BODY_BYTES={http.max_body_bytes}: a larger event from VOD is refused (413), and lost "
            "once VOD stops retrying it",
        )
    return CallbackSettings(
        sign_key=sign_key,
        previous_sign_key=previous_sign_key,
        # VOD sets T 10 minutes ahead (ModifyEventConfig's SignKey): less, and every genuine event is refused.
        max_ahead_seconds=r.integer("VOD_CALLBACK_MAX_AHEAD", 900, 660, 7 * 24 * 3600) or 900,
        store=_read_store(r),
        http=http,
        context_keys=_read_context_keys(r),
        after_commit_hook=_read_hook(r),
        confirm_api=_read_vod_api(r, stdlib_client=True)
        if r.choice("VOD_CALLBACK_CONFIRM", "none", CONFIRM_MODES) == "fetch"
        else None,
    )


def _read_vod_api(r: _Reader, *, stdlib_client: bool = False) -> VodApiSettings:
    """For the SDK (events_pull, vod-configure-events), which reads its proxy from the environment itself; or for
    shared.vod_cloud_api (`stdlib_client`: the callback), which is given the proxy read here."""
    named = len(r.problems)
    secret_id, secret_key = _account_keys(r)
    session_token = None
    if secret_id is None:
        # An SCF execution role: SCF injects its temporary keys (and their token) under these names.
        secret_id, secret_key = r.text("TENCENTCLOUD_SECRETID"), r.secret("TENCENTCLOUD_SECRETKEY")
        _check_secret_key(r, "TENCENTCLOUD_SECRETKEY", secret_key)
        session_token = r.secret("TENCENTCLOUD_SESSIONTOKEN")
        if session_token is not None and not is_header_value(session_token.reveal()):  # sent as X-TC-Token
            r.problem("TENCENTCLOUD_SESSIONTOKEN", "must be one line of printable ASCII, as SCF gives it")
    if (secret_id is None or secret_key is None) and len(r.problems) == named:  # else a half pair is named
        r.problem(
            "TENCENTCLOUD_SECRET_ID",
            "is required with TENCENTCLOUD_SECRET_KEY (in SCF: VOD_SECRET_ID and VOD_SECRET_KEY, or an execution role)",
        )
    endpoint = r.text("VOD_API_ENDPOINT", "vod.tencentcloudapi.com") or "vod.tencentcloudapi.com"
    protocol, _, host = endpoint.rpartition("://")
    endpoint_ok = False
    if protocol not in ("", "http", "https") or not _matches_with_port(_API_HOST, host, 2):
        r.problem("VOD_API_ENDPOINT", f"must be host[:port] or http(s)://host[:port] (got {endpoint!r})")
    elif not host.startswith("[") and host.partition(":")[0].endswith("."):
        # A name's root dot: the callback's TLS check (the stdlib's) refuses VOD's certificate for it, the SDK's not
        r.problem("VOD_API_ENDPOINT", f"write the host without its trailing dot (got {endpoint!r})")
    elif protocol == "http" and not is_loopback_host(host):
        # VOD's API takes https; over http, ModifyEventConfig's SignKey and a role's token would travel in clear
        r.problem("VOD_API_ENDPOINT", f"may use http:// only on loopback, for a local emulator (got {endpoint!r})")
    else:
        endpoint_ok = True
    region = r.text("VOD_API_REGION")
    _region(r, "VOD_API_REGION", region)
    return VodApiSettings(
        secret_id=secret_id or "",
        secret_key=secret_key or Secret(""),
        session_token=session_token,
        renewed_role=session_token is not None and r.in_scf,
        endpoint=host.lower(),  # VOD's signature rule lowercases the Host it signs: so must the signers
        protocol=protocol or "https",
        region=region,
        sub_app_id=_sub_app_id(r),
        proxy=_read_proxy(r, host.lower(), sdk=not stdlib_client) if protocol != "http" and endpoint_ok else None,
    )


def _read_proxy(
    r: _Reader, endpoint: str, *, sdk: bool, setting: str = "VOD_API_ENDPOINT", what: str = "VOD's API"
) -> ProxySettings | None:
    """The proxy the environment names for https://`endpoint` (`setting`'s host, `what` is reached there), as
    requests reads HTTPS_PROXY, ALL_PROXY, NO_PROXY (shared.env_proxy); none for loopback, which a proxy elsewhere
    cannot reach. Problems never quote the URL: it may hold a password. For the SDK (`sdk`), which goes through the
    proxy by itself, the one it takes is checked only for what would make each call fail quoting part of the
    password; none is returned."""
    from shared.env_proxy import https_proxy

    url = (sdk and _sdk_proxy(r.environ, endpoint)) or https_proxy(r.environ, endpoint)
    if not url or is_loopback_host(endpoint):
        return None
    from urllib.parse import unquote, urlsplit

    # Named as it was set: ALL_PROXY=socks5h://… is common on a developer's machine
    name = next((n for n, v in r.environ.items() if v == url and n.lower().endswith("_proxy")), "HTTPS_PROXY")
    if endpoint.startswith("[") and not sdk:  # http.client before 3.13 asks its tunnel for [IPv6] without brackets
        r.problem(name, f"{setting} is an IPv6 address: reach it without a proxy (NO_PROXY)")
        return None
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")  # a bare host:port: http://, as curl takes it
        # (not a scheme and one slash: "http:/user:password@host" lacks a slash, and its scheme is no host)
        host, port = (None if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:/(?!/)", url) else parts.hostname), parts.port or 80
    except ValueError:  # a port that is not a number, or out of range; a bracket unclosed
        host = None
    if host is None:  # the wording is no URL: one with a password in it would be masked in the message
        r.problem(name, "must be http://host[:port], with user:password@ before the host if the proxy asks for them")
        return None
    if parts.password is not None:  # masked in logs, as every secret is, as written and as sent
        Secret(parts.password)
        Secret(unquote(parts.password))
    if sdk:
        return None
    if parts.scheme.lower() != "http":
        r.problem(name, f"must be an http:// proxy ({what} is reached through its tunnel), not {parts.scheme}://")
        return None
    return ProxySettings(host=host, port=port, authorization=_proxy_authorization(r, name, parts))


def _proxy_authorization(r: _Reader, name: str, parts: SplitResult) -> Secret | None:
    """The Proxy-Authorization of a proxy URL's user and password, as requests sends it."""
    if not parts.username or parts.password is None:  # as requests: a user without a password sends none
        return None
    from urllib.parse import unquote

    try:
        pair = f"{unquote(parts.username)}:{unquote(parts.password)}".encode("latin-1")
    except UnicodeEncodeError:
        r.problem(name, "its user and password must be Latin-1 text (percent-encoded in the URL)")
        return None
    import base64

    return Secret("Basic " + base64.b64encode(pair).decode("ascii"))


def _sdk_proxy(environ: Mapping[str, str], endpoint: str) -> str | None:
    """The proxy tencentcloud-sdk-python-common hands requests (its ProxyConnection): https_proxy, else
    HTTPS_PROXY, unless NO_PROXY holds the host's name anywhere in it. When it hands none, requests reads the
    environment itself (`https_proxy`)."""
    # Scanned, not asked for by name: none is a setting that must be deployed (as in shared.env_proxy)
    named = {n: v for n, v in environ.items() if n in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY")}
    no_proxy = named.get("NO_PROXY") or named.get("no_proxy")
    if no_proxy and endpoint in no_proxy:
        return None
    return named.get("https_proxy") or named.get("HTTPS_PROXY")


def is_loopback_host(host: str) -> bool:
    """`host[:port]` names this machine: localhost or a loopback address (127.0.0.0/8, [::1])."""
    import ipaddress  # only for an http:// URL: not on the sign path as deployed

    name = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
    if name.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:  # a name other than localhost
        return False
    # Not an IPv4-mapped one ([::ffff:127.0.0.1]), which Python 3.13 counts as loopback and 3.10 does not
    return address.is_loopback and not getattr(address, "ipv4_mapped", None)


def load_vod_api_settings(environ: Mapping[str, str] | None = None) -> VodApiSettings:
    return _load(environ, _read_vod_api)


def load_pull_settings(environ: Mapping[str, str] | None = None) -> PullSettings:
    return _load(environ, _read_pull, function=True)


def _read_pull(r: _Reader) -> PullSettings:
    # A batch's events are begun until 15 s before the limit (5 s for the last, 10 s for its ConfirmEvents): a pull
    # begun later would hand out events only to leave them. The default leaves PullEvents' 5 s long poll.
    reserve = r.integer("VOD_PULL_RESERVE_SECONDS", 20, 16, 600) or 20
    budget = r.integer("VOD_PULL_BUDGET_SECONDS", 50, 1, 900) or 50
    if budget <= reserve and r.text("VOD_PULL_BUDGET_SECONDS"):  # set, to leave no time to pull at all
        r.problem("VOD_PULL_BUDGET_SECONDS", f"must be more than VOD_PULL_RESERVE_SECONDS ({reserve})")
    return PullSettings(
        api=_read_vod_api(r),
        store=_read_store(r),
        context_keys=_read_context_keys(r),
        after_commit_hook=_read_hook(r),
        reserve_seconds=reserve,
        budget_seconds=budget,
        until_empty=r.boolean("VOD_PULL_UNTIL_EMPTY", False),
    )
