"""Drift rules against their closed forms (LPO, Lu et al. 2022)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from inner_algos.rules import DriftInputs, make_rule
from inner_algos.rules.drift import lpo_features

pytestmark = pytest.mark.fast  # pure functions: part of `python -m pytest -m fast`


def _random_inputs(key, n=512):
    k1, k2 = jax.random.split(key)
    ratio = jnp.exp(0.4 * jax.random.normal(k1, (n,)))
    adv = jax.random.normal(k2, (n,))
    return ratio, adv


def test_ppo_clip_drift_gives_clipped_surrogate_value_and_gradient():
    rule = make_rule("ppo_clip", eps=0.2)
    ratio, adv = _random_inputs(jax.random.PRNGKey(0))

    def drift_loss(r):
        return -jnp.mean(r * adv - rule.apply({}, DriftInputs(r, adv)))

    def ppo_loss(r):
        return -jnp.mean(jnp.minimum(r * adv, jnp.clip(r, 0.8, 1.2) * adv))

    np.testing.assert_allclose(drift_loss(ratio), ppo_loss(ratio), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(drift_loss)(ratio), jax.grad(ppo_loss)(ratio), atol=1e-8)
    # the clipped region really is exercised by these inputs
    assert 0.1 < float(jnp.mean(jnp.abs(ratio - 1) > 0.2)) < 0.9


def test_lpo_with_ppo_init_reproduces_ppo_clip_at_init_and_at_zero():
    lpo = make_rule("lpo", ppo_init=True)
    ppo = make_rule("ppo_clip")
    ratio, adv = _random_inputs(jax.random.PRNGKey(1))
    inputs = DriftInputs(ratio, adv)
    meta = lpo.init(jax.random.PRNGKey(2))
    zeros = jax.tree.map(jnp.zeros_like, meta)
    expected = ppo.apply({}, inputs)
    np.testing.assert_array_equal(lpo.apply(meta, inputs), expected)
    np.testing.assert_array_equal(lpo.apply(zeros, inputs), expected)
    # a perturbed LPO drift differs, stays >= 0 and vanishes at r = 1
    bumped = jax.tree.map(lambda x: x + 0.5, meta)
    drift = lpo.apply(bumped, inputs)
    assert not np.allclose(drift, expected)
    assert float(drift.min()) >= 0.0
    at_one = lpo.apply(bumped, DriftInputs(jnp.ones_like(adv), adv))
    np.testing.assert_array_equal(at_one, 0.0)


def test_lpo_features_are_the_papers_set():
    """The net mixes its inputs, so their order is free; the set must be LPO's 8 features."""
    ratio, adv = _random_inputs(jax.random.PRNGKey(3), n=64)
    x, lg, a = np.asarray(ratio) - 1.0, np.log(np.asarray(ratio)), np.asarray(adv)
    paper = [x, x**2, lg, lg**2, x * a, x**2 * a, lg * a, lg**2 * a]
    columns = np.asarray(lpo_features(ratio, adv)).T
    matches = [[np.allclose(col, f, rtol=1e-5, atol=1e-6) for col in columns] for f in paper]
    assert columns.shape == (8, 64)
    assert all(sum(row) == 1 for row in matches)  # each paper feature is exactly one column
    assert all(sum(col) == 1 for col in zip(*matches))


def test_lpo_can_fit_dpo():
    """DPO lies below PPO-clip's drift in places; LPO with PPO-init must be able to go there.

    Adam on the relative MSE to DPO's drift over r in [0.5, 1.5] x A in [-2, 2], through the rule's
    own apply (a net that could only add to PPO-clip stays near a relative MSE of 1).
    """
    lpo, dpo = make_rule("lpo", ppo_init=True, hidden_size=128), make_rule("dpo")
    r, a = jnp.meshgrid(jnp.linspace(0.5, 1.5, 41), jnp.linspace(-2.0, 2.0, 41))
    inputs = DriftInputs(r.ravel(), a.ravel())
    target = dpo.apply({}, inputs)

    def rel_mse(meta):
        return jnp.mean((lpo.apply(meta, inputs) - target) ** 2) / jnp.mean(target**2)

    tx = optax.adam(1e-2)

    def step(carry, _):
        meta, opt = carry
        updates, opt = tx.update(jax.grad(rel_mse)(meta), opt, meta)
        return (optax.apply_updates(meta, updates), opt), None

    meta = lpo.init(jax.random.PRNGKey(0))
    (meta, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, length=1000))((meta, tx.init(meta)))
    assert float(rel_mse(meta)) < 0.02
    # the fitted rule is still a drift: >= 0 and zero at r = 1
    assert float(lpo.apply(meta, inputs).min()) >= 0.0
    np.testing.assert_array_equal(lpo.apply(meta, DriftInputs(jnp.ones(9), jnp.linspace(-2, 2, 9))), 0.0)


def test_dpo_closed_form():
    rule = make_rule("dpo")
    r = jnp.array([1.5, 1.5, 0.5, 1.0])
    a = jnp.array([1.0, -1.0, -2.0, 5.0])
    drift = rule.apply({}, DriftInputs(r, a))
    pos = 0.5 * 1.0
    neg1 = np.log(1.5) * -1.0
    neg2 = np.log(0.5) * -2.0
    expected = [
        max(pos - 2.0 * np.tanh(pos / 2.0), 0.0),
        max(neg1 - 0.6 * np.tanh(neg1 / 0.6), 0.0),
        max(neg2 - 0.6 * np.tanh(neg2 / 0.6), 0.0),
        0.0,
    ]
    np.testing.assert_allclose(drift, expected, rtol=1e-5, atol=1e-7)
    assert float(drift[2]) > 0  # log(0.5) * -2 = 1.39 exceeds beta * tanh(...)


@pytest.mark.parametrize(
    "name, options, field",
    [
        ("ppo_clip", {"eps": 1.5}, "eps"),
        ("dpo", {"alpha": -1.0}, "alpha"),
        ("lpo", {"hidden_size": 0}, "hidden_size"),
    ],
)
def test_bad_rule_options_name_the_field(name, options, field):
    with pytest.raises(ValueError, match=field):
        make_rule(name, **options)


def test_unknown_rule_lists_valid_names():
    with pytest.raises(ValueError, match="valid rules: .*ppo_clip"):
        make_rule("ppo_klpen")


@pytest.mark.parametrize("progress", [0.0, 0.25, 0.5, 1.0])
def test_temporal_lpo_with_zero_or_initial_params_is_ppo_clip_at_every_lifetime_fraction(progress):
    lpo = make_rule("lpo", ppo_init=True, temporal=True, hidden_size=8)
    ratio, adv = _random_inputs(jax.random.PRNGKey(4))
    r, a = np.asarray(ratio), np.asarray(adv)
    ppo_clip = np.maximum((r - np.clip(r, 0.8, 1.2)) * a, 0.0)  # PPO-clip's drift by hand
    meta = lpo.init(jax.random.PRNGKey(5))
    assert meta["hidden"].shape == (16, 8)
    for params in (meta, jax.tree.map(jnp.zeros_like, meta)):
        drift = lpo.apply(params, DriftInputs(ratio, adv, jnp.float32(progress)))
        np.testing.assert_allclose(drift, ppo_clip, rtol=1e-6, atol=1e-7)


def test_temporal_lpo_drift_changes_with_the_lifetime_fraction_and_vanishes_at_ratio_one():
    ratio, adv = _random_inputs(jax.random.PRNGKey(6))
    temporal = make_rule("lpo", ppo_init=False, temporal=True, hidden_size=8)
    meta = jax.tree.map(lambda x: x + 0.5, temporal.init(jax.random.PRNGKey(7)))
    early, late = (temporal.apply(meta, DriftInputs(ratio, adv, p)) for p in (0.0, 1.0))
    assert float(jnp.max(jnp.abs(early - late))) > 1e-2
    # at n/N = 0 only the first 8 rows of "hidden" (LPO's features) matter: plain LPO's drift
    plain = make_rule("lpo", ppo_init=False, hidden_size=8)
    np.testing.assert_allclose(
        early,
        plain.apply({"hidden": meta["hidden"][:8], "out": meta["out"]}, DriftInputs(ratio, adv)),
        rtol=1e-5,
        atol=1e-7,
    )
    for p in (0.0, 0.3, 1.0):
        at_one = temporal.apply(meta, DriftInputs(jnp.ones_like(adv), adv, p))
        np.testing.assert_array_equal(at_one, 0.0)
    # a rule without the option ignores n/N
    plain_meta = jax.tree.map(lambda x: x + 0.5, plain.init(jax.random.PRNGKey(7)))
    np.testing.assert_array_equal(
        plain.apply(plain_meta, DriftInputs(ratio, adv, 0.0)),
        plain.apply(plain_meta, DriftInputs(ratio, adv, 1.0)),
    )
