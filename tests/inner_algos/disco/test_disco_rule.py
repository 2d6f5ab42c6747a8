"""The disco rule's pieces against answers worked by hand: the two-hot value encoding, Retrace's
targets, the moving-average normaliser, the target network's coefficient; and the rule as a
registered, rebuildable rule of the targets family."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from inner_algos.rules import make_rule
from inner_algos.rules.disco import DiscoRule
from inner_algos.rules.disco import values as v


def test_two_hot_splits_between_neighbouring_bins():
    probs = v.two_hot(jnp.array([2.25, -300.0, 1000.0]), num_bins=601, max_abs_value=300.0)
    centre = 300  # the bin of 0
    assert probs[0, centre + 2] == pytest.approx(0.75 / (1 + 1e-5), abs=1e-6)
    assert probs[0, centre + 3] == pytest.approx(1 - 0.75 / (1 + 1e-5), abs=1e-6)
    assert probs[1, 0] == pytest.approx(1.0) and probs[2, 600] == pytest.approx(1.0)  # clipped


def test_hyperbolic_pair_inverts():
    x = jnp.array([-40.0, -1.0, 0.0, 0.5, 17.0])
    # The closed-form inverse subtracts numbers near 1 / (2 eps) = 500: float32 keeps ~2e-4.
    np.testing.assert_allclose(v.signed_parabolic(v.signed_hyperbolic(x)), x, rtol=5e-4, atol=5e-4)
    assert float(v.signed_hyperbolic(jnp.array(3.0))) == pytest.approx(1.0 + 3e-3)


def test_retrace_by_hand():
    # T = 2, B = 1; gamma d = [0.9, 0.9]; c = [0.5, 0.5]; Q(s1, a1) = 2; V = [0, 1, 3].
    r, d, c = jnp.array([[1.0], [2.0]]), jnp.array([[0.9], [0.9]]), jnp.array([[0.5], [0.5]])
    g = v.retrace_targets(r, d, c, jnp.array([[9.0], [2.0]]), jnp.array([[0.0], [1.0], [3.0]]))
    g1 = 2.0 + 0.9 * 3.0
    g0 = 1.0 + 0.9 * (1.0 - 0.5 * 2.0 + 0.5 * g1)
    np.testing.assert_allclose(np.asarray(g)[:, 0], [g0, g1], rtol=1e-6)


def test_moving_average_is_debiased():
    state = v.ema_update(v.ema_init(), jnp.array([1.0, 3.0]), decay=0.99)
    # After one batch the debiased mean is the batch's, 2, and the variance E[x^2] - 4 = 1.
    out = v.ema_normalize(state, jnp.array(4.0), eps=0.0)
    assert float(out) == pytest.approx(2.0, rel=1e-4)
    raw = v.ema_normalize(state, jnp.array(4.0), eps=0.0, subtract_mean=False)
    assert float(raw) == pytest.approx(4.0, rel=1e-4)


def test_target_params_move_by_the_coefficient():
    rule = DiscoRule()
    new = rule.update_target_params({"w": jnp.array([1.0])}, {"w": jnp.array([11.0])})
    assert float(new["w"][0]) == pytest.approx(0.9 * 1.0 + 0.1 * 11.0)


def test_rule_is_registered_and_rebuilds_from_its_options():
    rule = make_rule("disco")
    assert isinstance(rule, DiscoRule) and rule.family == "disco"
    assert make_rule("disco", **rule.options()) == rule
    with pytest.raises(ValueError, match="target_params_coeff"):
        make_rule("disco", hyperparams={"target_params_coeff": 1.5})


def test_the_harness_unread_discount_factor_is_no_option():
    """The harness's disco hyper_params hold discount_factor, which its disco rule never reads (it
    discounts by value_discount): a rule file written with it (equal to value_discount) loads as
    without it; another value is refused, naming the field that does discount."""
    assert "discount_factor" not in make_rule("disco").options()["hyperparams"]
    old = make_rule("disco", hyperparams={"discount_factor": 0.997, "pi_cost": 0.5})
    assert old == make_rule("disco", hyperparams={"pi_cost": 0.5})
    with pytest.raises(ValueError, match=r"discount_factor = 0.9: .*rule.value_discount"):
        make_rule("disco", hyperparams={"discount_factor": 0.9})
