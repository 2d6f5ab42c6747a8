"""Rule "open": OPEN's learned optimizer equals the authors' code on committed reference numbers.

fixtures/open_parity/open_parity.npz holds inputs and outputs of one update by the reference
(shared/reference/open/network.py, github.com/AlexGoldie/rl-learned-optimization b65037bd) run
once in a scratch environment by fixtures/open_parity/make_fixture.py (its docstring says how),
for the published Breakout, multi-task (larger network) and Ant (with a log-std) vectors. The
learned stochasticity is compared exactly: the fixture holds the key, and the rule splits it per
tensor as the reference does.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from inner_algos.envs import Task
from inner_algos.networks import Actor, layer_activations, make_policy
from inner_algos.ppo import make_ppo
from inner_algos.rules import make_rule
from inner_algos.rules.learned_optimizer import OptimizerContext, OptimizerInputs
from inner_algos.rules.open_optimizer import OpenState, dormancy, layer_fractions
from tests.support.builders import tiny_ppo_config

FIXTURE = Path(__file__).parent / "fixtures" / "open_parity" / "open_parity.npz"
PUBLISHED = Path(__file__).parents[2] / "discovery" / "zoo" / "data" / "open"
LARGER = {"multi": dict(hidden_size=32, gru_size=16)}


def _tree(data, case, field):
    """The fixture's leaves "<case>/<field>/<net>/<layer>/<leaf>" as our networks' params tree:
    {"actor": {"params": {"MLP_0": {"Dense_i": {...}}, "log_std": ...}}, "critic": ...}."""
    tree: dict = {}
    prefix = f"{case}/{field}/"
    for name in data.files:
        if not name.startswith(prefix):
            continue
        net, *rest = name[len(prefix) :].split("/")
        node = tree.setdefault(net, {}).setdefault("params", {})
        if rest[0] != "log_std":
            node = node.setdefault("MLP_0", {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = jnp.asarray(data[name])
    return tree


def _reference_case(case):
    data = np.load(FIXTURE)
    rule = make_rule("open", **LARGER.get(case, {}))
    params = _tree(data, case, "params")
    context = OptimizerContext(
        update_fraction=jnp.asarray(data[f"{case}/training_prop"]),
        epoch_fraction=jnp.asarray(data[f"{case}/batch_prop"]),
        activations=_tree(data, case, "activations"),
        key=jnp.asarray(data[f"{case}/key"]),
        params=params,
    )
    state = OpenState(_tree(data, case, "momenta"), _tree(data, case, "carry"))
    inputs = OptimizerInputs(_tree(data, case, "grads"), state, jnp.asarray(0.0), context)
    expected = {f: _tree(data, case, f) for f in ("new_params", "new_momenta", "new_carry")}
    return rule, rule.from_flat(data[f"{case}/vector"]), params, inputs, expected


@pytest.mark.fast
@pytest.mark.parametrize("case", ["breakout", "multi", "ant"])
def test_update_equals_the_reference(case):
    rule, meta, params, inputs, expected = _reference_case(case)
    update, state = jax.jit(rule.apply)(meta, inputs)
    # the reference returns params - update; compare the update itself, where it is small
    ref_update = jax.tree.map(lambda p, q: p - q, params, expected["new_params"])
    # measured (jax 0.10.2, CPU): update 4e-8, momenta 1e-8, carry 4.5e-7 at most
    for ours, ref, atol in (
        (update, ref_update, 1e-6),
        (state.momenta, expected["new_momenta"], 1e-6),
        (state.carry, expected["new_carry"], 1e-5),
    ):
        np.testing.assert_allclose(ravel_pytree(ours)[0], ravel_pytree(ref)[0], rtol=0, atol=atol)
    # the updates are well above the tolerance (mean |update| 5e-5 for Ant, 3e-4 and 6e-4 others)
    assert float(jnp.mean(jnp.abs(ravel_pytree(ref_update)[0]))) > 4e-5


@pytest.mark.fast
def test_the_published_vectors_load_unchanged():
    for path in sorted(PUBLISHED.glob("*_OPEN.npy")):
        rule = make_rule("open", **LARGER.get(path.name.split("_")[0], {}))
        vector = np.load(path)
        assert vector.shape == (rule.num_params,), path.name
        np.testing.assert_array_equal(ravel_pytree(rule.from_flat(vector))[0], vector)
    assert make_rule("open").num_params == 1211 and make_rule("open", **LARGER["multi"]).num_params == 3571
    with pytest.raises(ValueError, match="3571 numbers does not fit"):
        make_rule("open").from_flat(np.zeros(3571))


@pytest.mark.fast
def test_dormancy_and_layer_fractions_by_hand():
    np.testing.assert_allclose(dormancy(jnp.array([1.0, 0.0, 3.0])), [0.75, 0.0, 2.25], atol=1e-9)
    params = {
        "actor": {
            "params": {
                "MLP_0": {f"Dense_{i}": {"bias": 0.0, "kernel": 0.0} for i in range(3)},
                "log_std": 0.0,
            }
        },
        "critic": {"params": {"MLP_0": {f"Dense_{i}": {"bias": 0.0, "kernel": 0.0} for i in range(2)}}},
    }
    fracs = jax.tree.leaves(layer_fractions(params))
    np.testing.assert_allclose(fracs, [0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 0, 0, 1, 1])


@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_zero_meta_params_give_no_update():
    rule, _, params, inputs, _ = _reference_case("breakout")
    update, _ = rule.apply(rule.init(jax.random.PRNGKey(0)), inputs)
    assert not np.any(ravel_pytree(update)[0])


@pytest.mark.fast
def test_layer_activations_match_flax_intermediates():
    policy = make_policy(False, 3, (8, 8), "relu")
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    params = policy.init(jax.random.PRNGKey(0), obs[0])
    ours = layer_activations(params, obs, "relu")["params"]["MLP_0"]
    actor = Actor((8, 8), 3, "relu")
    _, inter = actor.apply(params, obs, capture_intermediates=True, mutable=["intermediates"])
    dense = inter["intermediates"]["MLP_0"]
    for i, name in enumerate(("Dense_0", "Dense_1", "Dense_2")):
        out = dense[name]["__call__"][0]
        expected = jnp.mean(jnp.abs(jax.nn.relu(out) if i < 2 else out), axis=0)
        np.testing.assert_allclose(ours[name]["kernel"], expected, rtol=1e-6)
        np.testing.assert_allclose(ours[name]["bias"], expected, rtol=1e-6)
    assert layer_activations(params, obs, "relu")["params"]["log_std"].shape == (1,)


@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_open_in_ppo_owns_the_whole_update():
    config = tiny_ppo_config(num_updates=3, anneal_lr=True, activation="relu")
    rule = make_rule("open")
    algo = make_ppo(config, Task(episode_length=50), rule)
    init = algo.init(rule.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
    train = jax.jit(algo.train)
    state, metrics = train(rule.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
    # zero meta-params: OPEN's update is exactly 0, whatever PPO's learning rate
    np.testing.assert_array_equal(ravel_pytree(state.params)[0], ravel_pytree(init.params)[0])
    np.testing.assert_array_equal(metrics["learning_rate"], 1.0)  # not annealed
    published = rule.from_flat(np.load(PUBLISHED / "breakout_OPEN.npy"))
    state, _ = train(published, jax.random.PRNGKey(1))
    moved = np.abs(ravel_pytree(state.params)[0] - ravel_pytree(init.params)[0])
    assert np.all(np.isfinite(moved)) and moved.max() > 1e-4
