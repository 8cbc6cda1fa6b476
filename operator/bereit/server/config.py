"""Server settings: one frozen dataclass, filled from the environment and then the command line.

Every setting has an environment variable (the names the operator renders, from
``bereit.constants``) and a flag; a flag wins over the variable. The flags of Azure ML's
``azmlinfsrv`` (``--entry_script``, ``--model_dir``, ``--port``, ``--worker_count``) are accepted
too, so a command line written for it works unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bereit import constants as c

AUTH_MODES = ("key", "token", "none")
LOG_FORMATS = ("json", "text")

# Defaults of Azure Machine Learning (v1) on AKS (AksWebservice.deploy_configuration): 60 s
# scoring timeout, one request at a time per replica, 500 ms max wait, and a queue of 10
# requests per replica.
DEFAULT_SCORING_TIMEOUT_MS = 60_000
DEFAULT_MAX_CONCURRENT_REQUESTS = 1
DEFAULT_MAX_QUEUE_WAIT_MS = 500
DEFAULT_MAX_QUEUE_LENGTH = 10
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024

# Read by bereit-server only (the operator renders no value for it; users may set it).
ENV_FAST_JSON = "BEREIT_FAST_JSON"


class ConfigError(ValueError):
    """A setting has a value the server cannot use; the message names the flag and variable."""


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    entry_script: Path
    model_dir: Path | None = None
    host: str = "0.0.0.0"
    port: int = c.SERVER_PORT
    auth_mode: str = "key"
    keys_dir: Path = Path(c.KEYS_DIR)
    scoring_timeout_ms: int = DEFAULT_SCORING_TIMEOUT_MS
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    max_queue_length: int = DEFAULT_MAX_QUEUE_LENGTH
    max_queue_wait_ms: int = DEFAULT_MAX_QUEUE_WAIT_MS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    data_collection: str = "off"  # off | stdout | a folder
    data_collection_sample_rate: float = 1.0
    log_format: str = "json"
    access_log: bool = True
    service_name: str = ""
    fast_json: bool = True

    def __post_init__(self) -> None:
        if self.auth_mode not in AUTH_MODES:
            raise ConfigError(
                f"--auth-mode / {c.ENV_AUTH_MODE}: {self.auth_mode!r} is not one of {', '.join(AUTH_MODES)}"
            )
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(
                f"--log-format / {c.ENV_LOG_FORMAT}: {self.log_format!r} is not one of {', '.join(LOG_FORMATS)}"
            )
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"--port / {c.ENV_PORT}: {self.port} is not a port (1-65535)")
        for name, flag, env, low in (
            ("scoring_timeout_ms", "--scoring-timeout-ms", c.ENV_SCORING_TIMEOUT_MS, 1),
            ("max_concurrent_requests", "--max-concurrent-requests", c.ENV_MAX_CONCURRENT_REQUESTS, 1),
            ("max_queue_length", "--max-queue-length", c.ENV_MAX_QUEUE_LENGTH, 0),
            ("max_queue_wait_ms", "--max-queue-wait-ms", c.ENV_MAX_QUEUE_WAIT_MS, 0),
            ("max_request_bytes", "--max-request-bytes", c.ENV_MAX_REQUEST_BYTES, 1),
        ):
            if getattr(self, name) < low:
                raise ConfigError(f"{flag} / {env}: {getattr(self, name)} is below the minimum {low}")
        if not 0.0 <= self.data_collection_sample_rate <= 1.0:
            raise ConfigError(
                f"--data-collection-sample-rate / {c.ENV_DATA_COLLECTION_SAMPLE_RATE}: "
                f"{self.data_collection_sample_rate} is not between 0 and 1"
            )


def switch(value: str) -> bool:
    """on/off, true/false, yes/no, 1/0 (any case)."""
    try:
        return _SWITCH[value.strip().lower()]
    except KeyError:
        raise ValueError(value) from None


_SWITCH = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}

# (field, flags, environment variables in order of precedence, conversion)
_OPTIONS: list[tuple[str, tuple[str, ...], tuple[str, ...], Callable]] = [
    ("entry_script", ("--entry-script", "--entry_script"), (c.ENV_ENTRY_SCRIPT, c.ENV_AZUREML_ENTRY_SCRIPT), Path),
    ("model_dir", ("--model-dir", "--model_dir"), (c.ENV_MODEL_DIR, c.ENV_AZUREML_MODEL_DIR), Path),
    ("host", ("--host",), (c.ENV_HOST,), str),
    ("port", ("--port",), (c.ENV_PORT,), int),
    ("auth_mode", ("--auth-mode",), (c.ENV_AUTH_MODE,), str),
    ("keys_dir", ("--keys-dir",), (c.ENV_KEYS_DIR,), Path),
    ("scoring_timeout_ms", ("--scoring-timeout-ms",), (c.ENV_SCORING_TIMEOUT_MS,), int),
    # azmlinfsrv's --worker_count is its number of request-handling threads: our concurrency.
    (
        "max_concurrent_requests",
        ("--max-concurrent-requests", "--worker_count"),
        (c.ENV_MAX_CONCURRENT_REQUESTS,),
        int,
    ),
    ("max_queue_length", ("--max-queue-length",), (c.ENV_MAX_QUEUE_LENGTH,), int),
    ("max_queue_wait_ms", ("--max-queue-wait-ms",), (c.ENV_MAX_QUEUE_WAIT_MS,), int),
    ("max_request_bytes", ("--max-request-bytes",), (c.ENV_MAX_REQUEST_BYTES,), int),
    ("data_collection", ("--data-collection",), (c.ENV_DATA_COLLECTION,), str),
    (
        "data_collection_sample_rate",
        ("--data-collection-sample-rate",),
        (c.ENV_DATA_COLLECTION_SAMPLE_RATE,),
        float,
    ),
    ("log_format", ("--log-format",), (c.ENV_LOG_FORMAT,), str),
    ("service_name", ("--service-name",), (c.ENV_SERVICE_NAME,), str),
    ("fast_json", ("--fast-json", "--fast_json"), (ENV_FAST_JSON,), switch),
]

# azmlinfsrv flags that have no meaning here; accepted so its command lines still start.
_IGNORED_AZMLINFSRV_FLAGS = (
    "--appinsights_instrumentation_key",
    "--health_port",
    "--access_control_allow_origins",
    "--config_file",
)


_HELP = {
    "entry_script": "the score.py with init() and run()",
    "model_dir": "model folder, seen by the script as AZUREML_MODEL_DIR",
    "host": "address to listen on (default 0.0.0.0)",
    "port": f"port (default {c.SERVER_PORT})",
    "auth_mode": "key (default), token or none",
    "keys_dir": f"folder with the {c.PRIMARY_KEY} and {c.SECONDARY_KEY} files (default {c.KEYS_DIR})",
    "scoring_timeout_ms": f"longest run() call before a 504 (default {DEFAULT_SCORING_TIMEOUT_MS})",
    "max_concurrent_requests": f"run() calls at once (default {DEFAULT_MAX_CONCURRENT_REQUESTS})",
    "max_queue_length": f"requests waiting for a run slot (default {DEFAULT_MAX_QUEUE_LENGTH}); more get 503",
    "max_queue_wait_ms": f"longest wait for a run slot before a 503 (default {DEFAULT_MAX_QUEUE_WAIT_MS})",
    "max_request_bytes": f"largest body before a 413 (default {DEFAULT_MAX_REQUEST_BYTES})",
    "data_collection": "off (default), stdout, or a folder for inputs and outputs as JSON lines",
    "data_collection_sample_rate": "share of requests collected, 0 to 1 (default 1)",
    "log_format": "json (default) or text",
    "service_name": "the InferenceService's name: swagger title, token audience",
    "fast_json": "on (default) or off: the entry script's own json.loads/json.load on orjson "
    "wherever the result is the standard library's",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the server's flags to ``parser`` (used by ``bereit-server`` and ``bereit serve``)."""
    for field, flags, envs, _ in _OPTIONS:
        parser.add_argument(*flags, dest=field, default=None, help=f"{_HELP[field]} (env {', '.join(envs)})")
    parser.add_argument(
        "--no-access-log", dest="access_log", action="store_false", default=None, help="do not log each request"
    )
    for flag in _IGNORED_AZMLINFSRV_FLAGS:
        parser.add_argument(flag, dest=None, default=None, help=argparse.SUPPRESS)


def _convert(value: str, kind: Callable, flag: str, env: str):
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{flag} / {env}: {value!r} is not a valid {kind.__name__}") from None


def from_sources(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Build the config: flags first, then environment variables, then defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field, flags, envs, kind in _OPTIONS:
        raw = getattr(args, field, None) if args is not None else None
        if raw is None:
            raw = next((environ[env] for env in envs if environ.get(env)), None)
        if raw is not None:
            values[field] = raw if kind is str else _convert(str(raw), kind, flags[0], envs[0])
    if args is not None and getattr(args, "access_log", None) is not None:
        values["access_log"] = args.access_log
    for flag in _IGNORED_AZMLINFSRV_FLAGS:
        if args is not None and getattr(args, flag.lstrip("-"), None) is not None:
            logging.getLogger("bereit.server").warning("%s is an azmlinfsrv flag bereit-server ignores", flag)
    if "entry_script" not in values:
        raise ConfigError(
            f"no entry script: pass --entry-script (or --entry_script) or set {c.ENV_ENTRY_SCRIPT}"
        )
    return ServerConfig(**values)  # type: ignore[arg-type]


def parse(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser(prog="bereit-server")
    add_arguments(parser)
    return from_sources(parser.parse_args(argv), environ)
