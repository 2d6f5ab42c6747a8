"""The published Disco103 weights load unchanged through `NAME_MAP`: every tensor of the file is
used exactly once, each has the shape of the param it fills, and a file that differs is refused
with the tensor's name."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from discovery.zoo.disco import ABOUT, WEIGHTS, load_disco103
from inner_algos.rules.disco import NAME_MAP, MetaNetSettings, params_from_reference
from inner_algos.rules.disco.weights import param_shapes


@pytest.fixture(scope="module")
def flat():
    with np.load(WEIGHTS) as data:
        return dict(data)


def test_name_map_covers_every_tensor_once(flat):
    assert len(NAME_MAP) == len(flat) == 42
    assert set(NAME_MAP) == set(flat)
    paths = list(NAME_MAP.values())
    assert len(set(paths)) == len(paths)  # no param filled twice
    assert set(paths) == set(param_shapes(MetaNetSettings()))  # every param filled


def test_every_tensor_has_its_params_shape(flat):
    shapes = param_shapes(MetaNetSettings())
    for name, path in NAME_MAP.items():
        assert flat[name].shape == shapes[path], name
        assert flat[name].dtype == np.float32, name


def test_load_disco103_is_the_file_unchanged(flat):
    rule, params = load_disco103()
    assert rule.name == "disco" and rule.family == "disco"
    for name, path in NAME_MAP.items():
        leaf = params
        for key in path:
            leaf = leaf[key]
        np.testing.assert_array_equal(np.asarray(leaf), flat[name], err_msg=name)
    assert sum(x.size for x in jax.tree.leaves(params)) == 754_778
    assert "CC-BY-4.0" in ABOUT


def test_a_different_file_is_refused(flat):
    settings = MetaNetSettings()
    name = "lstm/linear_4/w"
    with pytest.raises(ValueError, match="linear_4/w"):
        params_from_reference({**flat, name: flat[name][:-1]}, settings)
    with pytest.raises(ValueError, match="linear_4/w"):
        params_from_reference({k: v for k, v in flat.items() if k != name}, settings)
    with pytest.raises(ValueError, match="extra"):
        params_from_reference({**flat, "lstm/extra/w": flat[name]}, settings)
