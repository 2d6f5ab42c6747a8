"""Exported rules: a small, self-describing artefact loadable without the job that made it.

An exported rule is two files side by side:
  <stem>.npz   the meta-parameters, one array per leaf, keyed by its '/'-joined dict path
  <stem>.json  the header: format version, rule name, family and options, leaf shapes, and
               whatever provenance the caller adds (fitness, generation, kind, versions, ...)

Loading never unpickles or executes anything (`np.load(allow_pickle=False)`, plain JSON), checks
the arrays against the shapes the rule's own `init` produces, and refuses non-finite values (a
rule whose meta-parameters diverged would otherwise be trained with and scored).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import jax
import numpy as np

from inner_algos.rules import Rule, make_rule

FORMAT = "rl-discovery/rule/v1"


def _flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            if "/" in str(key):
                raise ValueError(f"meta-param key {key!r} may not contain '/'")
            out.update(_flatten(value, f"{prefix}{key}/"))
        return out
    return {prefix.rstrip("/"): np.asarray(tree)}


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def stem_of(path: str | os.PathLike) -> Path:
    """`x/rule.json`, `x/rule.npz` and `x/rule` all name the exported rule `x/rule`."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".npz") else path


def provenance_of(header: dict) -> dict:
    """A loaded header without the fields `save_rule` writes itself, to save the rule again."""
    return {k: v for k, v in header.items() if k not in ("format", "rule", "family", "options", "shapes")}


def save_rule(path: str | os.PathLike, rule: Rule, meta_params: Any, **provenance) -> Path:
    """Writes `<stem>.npz` and `<stem>.json` atomically; returns the stem.

    meta_params must be a (nested) dict of arrays, as every rule's `init` returns.
    provenance: extra JSON-serialisable header fields (fitness, generation, kind, versions...).
    """
    stem = stem_of(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    flat = _flatten(jax.device_get(meta_params))
    header = {
        "format": FORMAT,
        "rule": rule.name,
        "family": rule.family,
        "options": rule.options(),
        "shapes": {k: list(v.shape) for k, v in flat.items()},
        **provenance,
    }
    tmp_npz = stem.with_name(stem.name + ".tmp.npz")
    tmp_json = stem.with_name(stem.name + ".tmp.json")
    np.savez(tmp_npz, **cast(dict[str, Any], flat))  # array names, none a savez option
    tmp_json.write_text(json.dumps(header, indent=2, default=float))
    os.replace(tmp_npz, stem.with_suffix(".npz"))
    os.replace(tmp_json, stem.with_suffix(".json"))
    return stem


def load_rule(path: str | os.PathLike) -> tuple[Rule, dict, dict]:
    """Reads an exported rule: returns (rule, meta_params, header).

    Raises ValueError naming the file when it is missing, not an exported rule, names no known
    rule, or its arrays do not match the shapes its rule expects or hold non-finite values.
    """
    stem = stem_of(path)
    header_path, arrays_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    for p in (header_path, arrays_path):
        if not p.is_file():
            raise ValueError(f"exported rule {stem}: file {p} is missing")
    try:
        header = json.loads(header_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"exported rule header {header_path} is not valid JSON: {err}") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{header_path} is not an exported rule (expected format {FORMAT!r})")
    rule = _header_rule(header, header_path)
    try:
        with np.load(arrays_path, allow_pickle=False) as data:
            flat = {k: np.asarray(data[k]) for k in data.files}
    except Exception as err:  # zipfile/np errors differ by failure; name the file either way
        raise ValueError(f"exported rule arrays {arrays_path} cannot be read: {err}") from err
    expected = {k: v.shape for k, v in _flatten(rule.init(jax.random.PRNGKey(0))).items()}
    got = {k: v.shape for k, v in flat.items()}
    if expected != got:
        raise ValueError(
            f"{arrays_path}: meta-parameter shapes {got} do not match rule {rule.name!r} "
            f"with options {header.get('options')}: expected {expected}"
        )
    nonfinite = sorted(
        k for k, v in flat.items() if np.issubdtype(v.dtype, np.inexact) and not np.all(np.isfinite(v))
    )
    if nonfinite:
        raise ValueError(
            f"{arrays_path}: meta-parameters {nonfinite} hold non-finite values (NaN or inf): the "
            f"rule diverged; use an earlier generation's export (rules/gen_<G>_*)"
        )
    return rule, _unflatten(flat), header


def _header_rule(header: dict, header_path: Path) -> Rule:
    """The rule a header names (keys "rule" and "options"); ValueError naming the file if not."""
    name, options = header.get("rule"), header.get("options", {})
    if not isinstance(name, str) or not isinstance(options, dict):
        raise ValueError(
            f'{header_path} lacks the rule\'s name (key "rule", a string) or its '
            f'options (key "options", a table); re-export the rule'
        )
    try:
        return make_rule(name, **options)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(
            f"{header_path} names rule {name!r} with options {options}, which cannot be built: {err}"
        ) from err
