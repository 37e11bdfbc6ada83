"""The compose stack's files as the tests read them: the compose file (alone, or with the
three-node Kafka override merged in as compose merges it) with compose's variable
interpolation over the .env the README's first command makes, the services' environments,
the Dockerfile's instructions, the start scripts."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import yaml

from testkit.processes import ROOT

COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
CLUSTER_FILE = COMPOSE_DIR / "docker-compose.cluster.yml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
START_SCRIPTS = {
    "api": COMPOSE_DIR / "start-api.sh",
    "relay": COMPOSE_DIR / "start-relay.sh",
    "worker": COMPOSE_DIR / "start-worker.sh",
}
ENV_EXAMPLE = ROOT / ".env.example"
# Secrets .env.example leaves empty, so that compose refuses to start until they are set;
# the README's first command generates them into .env.
GENERATED_SECRETS = ("GRAFANA_ADMIN_PASSWORD",)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


COMPOSE_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?+])([^}]*))?\}|(\w+))")


class InterpolationError(ValueError):
    """A required variable (`${X:?message}`) is missing."""


def interpolate(value, env: dict[str, str]):
    """Compose's variable interpolation, applied to every string of a loaded file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(5)
        operator, argument = match.group(3), match.group(4)
        present = name in env
        current = env.get(name, "")
        unset = not present or (operator is not None and operator.startswith(":") and not current)
        if operator in ("-", ":-"):
            return argument if unset else current
        if operator in ("?", ":?"):
            if unset:
                raise InterpolationError(f"{name}: {argument}")
            return current
        if operator in ("+", ":+"):
            return "" if unset else argument
        return current

    return COMPOSE_VARIABLE.sub(replace, value)


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def stack_env() -> dict[str, str]:
    """The .env the README's first command makes: .env.example, generated secrets set."""
    values = read_env_file(ENV_EXAMPLE)
    values.update({name: secrets.token_urlsafe(32) for name in GENERATED_SECRETS})
    return values


def resolved_compose(*overrides: Path) -> dict:
    """The compose file (with the `overrides` files merged in, as `-f` after it) as
    `docker compose --env-file .env` would see it (.env made by the README's first
    command from .env.example)."""
    merged = load_compose()
    for path in overrides:
        merged = merge(merged, yaml.safe_load(path.read_text()))
    return interpolate(merged, stack_env())


# Sequences an override replaces; the others it adds to (volumes: one per mount target).
REPLACED_SEQUENCES = {"command", "entrypoint", "test"}


def merge(base, override, key: str | None = None):
    """Compose's merge of an override file into `base`, for what this project's files use:
    mappings merged key by key, `command`, `entrypoint` and a healthcheck's `test`
    replaced, `volumes` merged by mount target, other sequences joined without repeats."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in REPLACED_SEQUENCES:
        if key == "volumes":
            targets = {mount_target(item) for item in override}
            return [item for item in base if mount_target(item) not in targets] + override
        return base + [item for item in override if item not in base]
    return override


def mount_target(volume) -> str:
    """The path inside the container of a volume entry (short or long syntax)."""
    return volume["target"] if isinstance(volume, dict) else str(volume).split(":")[1]


def service_env(service: dict) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each Dockerfile instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]
