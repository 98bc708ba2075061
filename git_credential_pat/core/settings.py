"""Every setting, where it comes from, and its default.

A setting is a git config key under `credential.<url>.*`, so it can be scoped to one organization
(`credential.https://dev.azure.com/contoso.patScope`), and an environment variable that mirrors it
and wins (`GIT_CREDENTIAL_PAT_SCOPE`), so scripts and CI can override without touching config.
All of a remote's settings come from a single `git config --get-urlmatch` call (made by the
actions' context), because `get` runs on every fetch and each extra process costs milliseconds;
what is here only parses what that call and the environment say.
"""

from __future__ import annotations

from git_credential_pat.core import constants
from git_credential_pat.core.errors import HelperError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

ENV_PREFIX = "GIT_CREDENTIAL_PAT_"
CONFIG_PREFIX = "pat"


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        value = value.strip().lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value

    return parse


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = kind(value.strip())
        if number <= 0:
            raise ValueError("expected a positive number")
        return number

    return parse


def _boolean(value: str) -> bool:
    """git's own spellings of a boolean."""
    value = value.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0", ""):
        return False
    raise ValueError("expected true or false")


def _text(value: str) -> str:
    return value.strip()


def _path(value: str) -> str:
    import os  # not on the hit path, which cannot afford `os`

    return os.path.expanduser(value.strip())


class Setting:
    """One setting's documentation, kept beside its parser so `--help` and the README agree."""

    __slots__ = ("default", "doc", "name", "parse")

    def __init__(self, name: str, default: object, parse: Callable[[str], object],
                 doc: str) -> None:
        self.name, self.default, self.parse, self.doc = name, default, parse, doc

    @property
    def config_key(self) -> str:
        return CONFIG_PREFIX + "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("mode", "auto", _choice("auto", "pat", "oauth"),
            "auto: mint a PAT, and answer with the Entra access token when the organization "
            "forbids PATs; pat: PATs only; oauth: always the access token, never a PAT."),
    Setting("scope", constants.DEFAULT_SCOPE, _text,
            "Space-separated PAT scopes. vso.code reads, vso.code_write pushes; "
            "app_token (full access) only when named here."),
    Setting("lifespan_days", constants.DEFAULT_LIFESPAN_DAYS, _positive(int),
            "Days a new PAT is valid."),
    Setting("rotate_days", constants.DEFAULT_ROTATE_DAYS, _positive(int),
            "A PAT with fewer days left than this is replaced on the next use."),
    Setting("account", "", _text, "The Entra account (UPN) to sign in with for these remotes."),
    Setting("client_id", constants.DEFAULT_CLIENT_ID, _text,
            "The public client (app registration) used to sign in."),
    Setting("tenant", "", _text, "Pin the Entra tenant instead of asking the organization."),
    Setting("authority_host", constants.DEFAULT_AUTHORITY_HOST, _text,
            "The sign-in host, for sovereign clouds."),
    Setting("interactive", "auto", _choice("auto", "never"),
            "never: fail instead of opening a browser or printing a device code."),
    Setting("flow", "auto", _choice("auto", "browser", "device", "broker"),
            "How to sign in when a person is needed. auto: a browser where one can open, a "
            "device code over SSH (SSH_CONNECTION, SSH_TTY) or at a terminal with no display."),
    Setting("git_prompt", False, _boolean,
            "true: when sign-in or minting fails, let git try its next helper and ask for a "
            "user name and password itself; by default git is told to stop (quit=1)."),
    Setting("store", "keyring", _choice("keyring", "file"),
            "Where secrets live: the OS keyring, or (opt-in) a 0600 file."),
    Setting("store_file", "", _path, "The file used when store is file; by default "
            "~/.config/git-credential-pat/credentials.json."),
    Setting("timeout", 30.0, _positive(float),
            "Seconds one HTTP request may take in all, its retries and whole answer included."),
    Setting("git_timeout", 10.0, _positive(float),
            "Seconds to wait for one git command the helper runs (git config, git's cache)."),
    Setting("store_timeout", constants.DEFAULT_STORE_TIMEOUT, _positive(float),
            "Seconds to wait for the OS keyring (or the file store's lock) to answer one call: "
            "a stopped keyring daemon, or an unlock prompt nobody answers, then fails in one "
            "line."),
    Setting("signin_timeout", 300.0, _positive(float), "Seconds to wait for a person to sign in."),
    Setting("trace", "", _text,
            "1 or stderr traces to stderr; an absolute path appends to that file. "
            "Secrets are always redacted."),
    Setting("identity", "user", _choice("user", "service-principal", "managed-identity",
                                        "workload-identity"),
            "Who signs in: user (a person; PATs), or, for automation, service-principal, "
            "managed-identity or workload-identity, which answer git with an Entra access "
            "token and never mint a PAT."),
    Setting("identity_client_id", "", _text,
            "The client ID of the service principal, workload identity or user-assigned "
            "managed identity; by default AZURE_CLIENT_ID."),
    Setting("identity_object_id", "", _text,
            "A user-assigned managed identity chosen by its object (principal) ID."),
    Setting("identity_resource_id", "", _text,
            "A user-assigned managed identity chosen by its Azure resource ID."),
    Setting("identity_secret_env", "AZURE_CLIENT_SECRET", _text,
            "The environment variable that holds the service principal's client secret."),
    Setting("identity_secret_file", "", _path,
            "A file that holds the service principal's client secret (wins over the "
            "variable). Secrets never go in git config."),
    Setting("identity_certificate", "", _path,
            "A PEM file with the service principal's private key and certificate; by default "
            "AZURE_CLIENT_CERTIFICATE_PATH, its password in AZURE_CLIENT_CERTIFICATE_PASSWORD."),
    Setting("identity_token_file", "", _path,
            "The workload identity's federated token file; by default "
            "AZURE_FEDERATED_TOKEN_FILE, else GitHub Actions' OIDC token."),
)
_BY_CONFIG_KEY = {s.config_key.lower(): s for s in SETTINGS}
_BY_NAME = {s.name: s for s in SETTINGS}


class Settings:
    """The settings in force for one remote; attributes are named as in `SETTINGS`.

    git's proxy and CA settings ride along (`proxy`, `ca_file`, `ssl_verify`) once `with_http`
    has read them, which only the network paths do.
    """

    mode: str
    scope: str
    lifespan_days: int
    rotate_days: int
    account: str
    client_id: str
    tenant: str
    authority_host: str
    interactive: str
    flow: str
    git_prompt: bool
    store: str
    store_file: str
    timeout: float
    git_timeout: float
    store_timeout: float
    signin_timeout: float
    trace: str
    identity: str
    identity_client_id: str
    identity_object_id: str
    identity_resource_id: str
    identity_secret_env: str
    identity_secret_file: str
    identity_certificate: str
    identity_token_file: str
    proxy: str = ""
    ca_file: str = ""
    ssl_verify: bool = True

    def __init__(self, **values: object) -> None:
        for setting in SETTINGS:
            setattr(self, setting.name, values.pop(setting.name, setting.default))
        for name, value in values.items():
            setattr(self, name, value)

    def replace(self, **values: object) -> Settings:
        return Settings(**{**vars(self), **values})


def _parse(setting: Setting, value: str, source: str) -> object:
    try:
        return setting.parse(value)
    except ValueError as error:
        raise HelperError(f"{source}={value!r} is not valid: {error}") from None


def resolve(config: Mapping[str, str], environ: Mapping[str, str]) -> Settings:
    """Settings from a remote's `credential` section (`git config --get-urlmatch`, keys in lower
    case) and the environment, which wins; defaults for the rest."""
    values: dict[str, object] = {}
    for key, value in config.items():
        setting = _BY_CONFIG_KEY.get(key.removeprefix("credential."))
        if setting:
            values[setting.name] = _parse(setting, value, f"credential.{setting.config_key}")
    for setting in SETTINGS:
        value = from_environ(setting.name, environ)
        if value is not None:
            values[setting.name] = value
    return Settings(**values)


def from_environ(name: str, environ: Mapping[str, str]) -> object:
    """A setting as the environment sets it (which wins over git config), or None."""
    setting = _BY_NAME[name]
    value = environ.get(setting.env_var)
    return None if value is None else _parse(setting, value, setting.env_var)


def with_http(settings: Settings, http: Mapping[str, str], environ: Mapping[str, str]) -> Settings:
    """Add git's proxy and CA settings (a remote's `http` section), which only the network paths
    need."""
    import os

    verify = http.get("http.sslverify", "true").strip().lower() not in ("false", "no", "off", "0")
    return settings.replace(
        proxy=http.get("http.proxy", ""),
        ca_file=os.path.expanduser(http.get("http.sslcainfo", "")),
        ssl_verify=verify and not environ.get("GIT_SSL_NO_VERIFY"),
    )
