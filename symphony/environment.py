"""The ``SYMPH_*`` environment of a process (DESIGN §2). Pure."""

from __future__ import annotations

from collections.abc import Mapping

from symphony.model import Experiment, ProcessSpec, env_name

RESERVED_PREFIX = "SYMPH_"


def process_environment(
    process: ProcessSpec,
    *,
    addresses: Mapping[str, tuple[str, int]],
    cluster: str,
) -> dict[str, str]:
    """Symphony's variables for ``process``, then the manifest's ``env``.

    ``addresses`` maps every bound or exposed name of the experiment to the
    (host, port) the cluster chose for it. The manifest env comes last but has
    already been checked not to override a ``SYMPH_`` variable.
    """
    env: dict[str, str] = {}
    for name, (host, port) in sorted(addresses.items()):
        key = env_name(name)
        env[f"SYMPH_{key}_HOST"] = host
        env[f"SYMPH_{key}_PORT"] = str(port)
        env[f"SYMPH_{key}_ADDR"] = f"{host}:{port}"
    env["SYMPH_EXPERIMENT"] = process.experiment
    env["SYMPH_PROCESS"] = process.name
    env["SYMPH_PROCESS_GROUP"] = process.group or ""
    env["SYMPH_REPLICA"] = str(process.replica)
    env["SYMPH_CLUSTER"] = cluster
    for key, value in process.env.items():
        if not key.startswith(RESERVED_PREFIX):
            env[key] = value
    return env


def fixed_ports(experiment: Experiment) -> dict[str, int]:
    """Names whose port the manifest fixed."""
    return {e.name: e.port for e in experiment.endpoints if e.port is not None}


def provider_of(experiment: Experiment) -> dict[str, ProcessSpec]:
    """Which process provides each bound or exposed name (exactly one, by validation)."""
    return {e.name: p for p in experiment.processes for e in p.endpoints}
