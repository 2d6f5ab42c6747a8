"""Versions of Python and of the packages whose numbers a run or an evaluation depends on."""

from __future__ import annotations

import importlib.metadata
import platform

from inner_algos.envs.sources import source_versions

PACKAGES = (
    "rl-discovery",
    "jax",
    "jaxlib",
    "brax",
    "gymnax",
    "evosax",
    "optax",
    "orbax-checkpoint",
    "flax",
    "distrax",
    "chex",
    "numpy",
    "matplotlib",
)


def package_versions() -> dict[str, str]:
    """{"python": "3.11.7", "jax": "0.10.2", ..., "source:gridworld": "1", ...}: the packages'
    ("not installed" for a missing one) and every registered task source's own version."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions.update({f"source:{name}": version for name, version in source_versions().items()})
    return versions
