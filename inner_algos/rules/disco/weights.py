"""The published Disco103 weights (a flat `.npz` of the Haiku harness's tensor names) as our
meta-network's params: `NAME_MAP` says, for every tensor of the file, the path of the param it
is in `inner_algos.rules.disco.meta_net.init_params`'s tree; tensors load unchanged (same shape,
same values, float32)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

from inner_algos.rules.disco.meta_net import Params, init_params
from inner_algos.rules.disco.settings import MetaNetSettings

_ROOT = "lstm"  # the Haiku module of the meta-network
_LIFETIME = "lstm/~/meta_lstm/~unroll"  # its lifetime LSTM's scope

# Haiku module -> our layer. "trajectory": the per-trajectory network; "lifetime": the lifetime
# LSTM and its input networks (`meta_net` module docstring).
_MODULES: dict[str, tuple[str, ...]] = {
    f"{_ROOT}/mlp/~/linear_0": ("trajectory", "y_net", "layer_0"),
    f"{_ROOT}/mlp/~/linear_1": ("trajectory", "y_net", "layer_1"),
    f"{_ROOT}/mlp_1/~/linear_0": ("trajectory", "z_net", "layer_0"),
    f"{_ROOT}/mlp_1/~/linear_1": ("trajectory", "z_net", "layer_1"),
    f"{_ROOT}/sequential/conv1_d": ("trajectory", "action_net", "layer_0"),
    f"{_ROOT}/sequential/conv1_d_1": ("trajectory", "action_net", "layer_1"),
    f"{_ROOT}/lstm/linear": ("trajectory", "lstm"),
    f"{_ROOT}/linear": ("trajectory", "lifetime_gate"),
    f"{_ROOT}/linear_1": ("trajectory", "lifetime_input_head"),
    f"{_ROOT}/linear_2": ("trajectory", "y_head"),
    f"{_ROOT}/linear_3": ("trajectory", "z_head"),
    f"{_ROOT}/sequential_1/conv1_d": ("trajectory", "policy_net", "layer_0"),
    f"{_ROOT}/linear_4": ("trajectory", "policy_head"),
    f"{_LIFETIME}/mlp/~/linear_0": ("lifetime", "y_net", "layer_0"),
    f"{_LIFETIME}/mlp/~/linear_1": ("lifetime", "y_net", "layer_1"),
    f"{_LIFETIME}/mlp_1/~/linear_0": ("lifetime", "z_net", "layer_0"),
    f"{_LIFETIME}/mlp_1/~/linear_1": ("lifetime", "z_net", "layer_1"),
    f"{_LIFETIME}/sequential/conv1_d": ("lifetime", "action_net", "layer_0"),
    f"{_LIFETIME}/sequential/conv1_d_1": ("lifetime", "action_net", "layer_1"),
    f"{_LIFETIME}/mlp_2/~/linear_0": ("lifetime", "embed", "layer_0"),
    f"{_LIFETIME}/lstm/linear": ("lifetime", "lstm"),
}

# Reference tensor name -> our param path (42 tensors: a weight "w" and a bias "b" per module).
NAME_MAP: dict[str, tuple[str, ...]] = {
    f"{module}/{leaf}": (*path, leaf) for module, path in _MODULES.items() for leaf in ("w", "b")
}


def param_shapes(settings: MetaNetSettings) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Our params' paths and shapes (without computing them)."""
    tree = jax.eval_shape(lambda: init_params(settings, jax.random.PRNGKey(0)))
    return {
        tuple(k.key for k in path): tuple(leaf.shape)
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def params_from_reference(flat: Mapping[str, np.ndarray], settings: MetaNetSettings) -> Params:
    """Our params from the reference's flat tensors (`NAME_MAP`): every tensor of the file is
    used exactly once, every param is filled, and each tensor's shape is the param's; a
    ValueError names the tensor otherwise."""
    shapes = param_shapes(settings)
    unknown = sorted(set(flat) - set(NAME_MAP))
    missing = sorted(set(NAME_MAP) - set(flat))
    if unknown or missing:
        raise ValueError(
            f"weights file: tensors not in NAME_MAP {unknown}; NAME_MAP tensors missing {missing}"
        )
    if sorted(NAME_MAP.values()) != sorted(shapes):
        raise ValueError(f"NAME_MAP's paths differ from the meta-network's params {sorted(shapes)}")
    params: dict = {}
    for name, path in NAME_MAP.items():
        tensor = np.asarray(flat[name])
        if tensor.shape != shapes[path]:
            raise ValueError(
                f"tensor {name!r} has shape {tensor.shape}; param {'/'.join(path)} needs {shapes[path]}"
            )
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = jax.numpy.asarray(tensor, jax.numpy.float32)
    return params
