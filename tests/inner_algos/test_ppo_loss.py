"""`ppo_loss` alone, against references written here in numpy on a tiny batch.

The networks are stand-ins whose outputs are easy to write by hand: a categorical policy with
logits = obs @ W and a linear critic V = obs @ w. The references compute softmax log-probs,
the advantage normalisation, the clipped surrogate, the value loss and the entropy themselves.
"""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from inner_algos.networks import Policy
from inner_algos.ppo import Batch, Networks, PPOConfig, RuleSlots, ppo_loss, rule_slots
from inner_algos.ppo.slots import ppo_clip_slot, rule_drift_slot
from inner_algos.rules import make_rule
from inner_algos.rules.hyperparams import HyperParams

pytestmark = pytest.mark.fast  # pure functions: part of `python -m pytest -m fast`

B, OBS, ACTIONS = 6, 3, 4


class LinearCritic:
    @staticmethod
    def apply(params, obs):
        return obs @ params["w"]


NETWORKS = Networks(
    Policy(init=None, distribution=lambda p, obs: distrax.Categorical(logits=obs @ p["W"]), mode=None),
    LinearCritic(),
)
HP = HyperParams(*(jnp.float32(x) for x in (0.99, 0.95, 0.2, 0.03, 1e-3)))  # clip_eps 0.2, ent 0.03


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    old = {"actor": {"W": rng.normal(size=(OBS, ACTIONS))}, "critic": {"w": rng.normal(size=OBS)}}
    new = {
        "actor": {"W": old["actor"]["W"] + 0.6 * rng.normal(size=(OBS, ACTIONS))},
        "critic": {"w": old["critic"]["w"] + 0.3 * rng.normal(size=OBS)},
    }
    obs = rng.normal(size=(B, OBS))
    action = rng.integers(0, ACTIONS, size=B)
    old_log_prob = _log_softmax(obs @ old["actor"]["W"])[np.arange(B), action]
    old_value, value = obs @ old["critic"]["w"], obs @ new["critic"]["w"]
    # targets beyond the new value (seen from the old one) at even samples: value clipping bites there
    target = np.where(np.arange(B) % 2 == 0, old_value + 2 * (value - old_value), rng.normal(size=B))
    batch = Batch(obs, action, old_log_prob, old_value, rng.normal(size=B), target)
    as32 = lambda tree: jax.tree.map(
        lambda x: jnp.asarray(x, jnp.int32 if x.dtype.kind == "i" else jnp.float32), tree
    )
    return new, batch, as32(new), as32(batch)


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _reference(params, batch, drift_of, vf_coef, value_clip, clip_eps=0.2, ent_coef=0.03):
    """(total, ratio, normalised advantage, drift) by hand."""
    obs, action, old_lp, old_v, adv, target = batch
    logp_all = _log_softmax(obs @ params["actor"]["W"])
    ratio = np.exp(logp_all[np.arange(B), action] - old_lp)
    a = (adv - adv.mean()) / (adv.std() + 1e-8)
    drift = drift_of(ratio, a)
    policy_loss = -np.mean(ratio * a - drift)
    v = obs @ params["critic"]["w"]
    value_loss = (v - target) ** 2
    if value_clip:
        value_loss = np.maximum(value_loss, (old_v + np.clip(v - old_v, -clip_eps, clip_eps) - target) ** 2)
    entropy = np.mean(-(np.exp(logp_all) * logp_all).sum(-1))
    return policy_loss + vf_coef * 0.5 * np.mean(value_loss) - ent_coef * entropy, ratio, a, drift


def _loss(params, batch, drift, meta=None, value_clip=False, vf_coef=0.5, progress=0.0):
    return ppo_loss(
        params,
        batch,
        meta,
        HP,
        jnp.float32(progress),
        networks=NETWORKS,
        drift=drift,
        vf_coef=vf_coef,
        value_clip=value_clip,
    )


@pytest.mark.parametrize("value_clip", [False, True])
def test_ppo_clip_loss_is_the_clipped_surrogate_plus_value_loss_minus_entropy(value_clip):
    params, batch, params32, batch32 = _setup()

    def clipped_surrogate_drift(r, a):  # r A - min(r A, clip(r) A): the loss is PPO's surrogate
        return r * a - np.minimum(r * a, np.clip(r, 0.8, 1.2) * a)

    total, stats = _loss(params32, batch32, ppo_clip_slot, value_clip=value_clip, vf_coef=0.7)
    want, ratio, _, drift = _reference(params, batch, clipped_surrogate_drift, 0.7, value_clip)
    np.testing.assert_allclose(total, want, rtol=1e-5, atol=1e-6)
    assert 0 < np.mean(drift > 0) < 1  # some samples are clipped, some not
    np.testing.assert_allclose(stats["drift_active_frac"], np.mean(drift > 1e-9), atol=1e-6)
    np.testing.assert_allclose(stats["ratio_mean"], ratio.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["approx_kl"], np.mean(ratio - 1 - np.log(ratio)), rtol=1e-4, atol=1e-7)


def test_value_clip_changes_the_loss_here():
    """The batch above exercises value clipping (else the parametrised test proves nothing)."""
    params, batch, params32, batch32 = _setup()
    assert not np.isclose(
        _loss(params32, batch32, ppo_clip_slot, value_clip=True)[0],
        _loss(params32, batch32, ppo_clip_slot, value_clip=False)[0],
    )


def test_dpo_drift_slot():
    params, batch, params32, batch32 = _setup(1)
    rule = make_rule("dpo", alpha=0.5, beta=0.3)

    def dpo(r, a):  # Lu et al. 2022, eq. 5
        pos, neg = (r - 1) * a, np.log(r) * a
        return np.where(
            a >= 0,
            np.maximum(pos - 0.5 * np.tanh(pos / 0.5), 0),
            np.maximum(neg - 0.3 * np.tanh(neg / 0.3), 0),
        )

    slot = rule_slots(PPOConfig(), rule).drift
    total, _ = _loss(params32, batch32, slot)
    np.testing.assert_allclose(total, _reference(params, batch, dpo, 0.5, False)[0], rtol=1e-5, atol=1e-6)


def test_temporal_lpo_drift_slot_sees_meta_params_and_progress():
    params, batch, params32, batch32 = _setup(2)
    rule = make_rule("lpo", hidden_size=5, ppo_init=False, temporal=True)
    rng = np.random.default_rng(3)
    meta = {"hidden": rng.normal(size=(16, 5)), "out": rng.normal(size=5)}
    progress = 0.4

    def lpo(r, a):
        x, lr = r - 1, np.log(r)
        base = np.stack([x, x * x, lr, lr * lr], -1)
        feats = np.concatenate([base, base * a[:, None]], -1)
        feats = np.concatenate([feats, feats * progress], -1)
        return np.maximum(np.tanh(feats @ meta["hidden"]) @ meta["out"] - 1e-4, 0)

    slot = rule_slots(PPOConfig(), rule).drift
    meta32 = jax.tree.map(jnp.float32, meta)
    total, stats = _loss(params32, batch32, slot, meta=meta32, progress=progress)
    want, _, _, drift = _reference(params, batch, lpo, 0.5, False)
    assert np.mean(drift) > 1e-3  # the drift is really in play
    np.testing.assert_allclose(total, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["drift_mean"], drift.mean(), rtol=1e-4, atol=1e-7)


def test_rule_slots_by_family():
    cfg = PPOConfig()
    hp_rule = make_rule("hyperparams", learn=["gamma"])
    slots = rule_slots(cfg, hp_rule)
    assert (
        isinstance(slots, RuleSlots) and slots.drift is ppo_clip_slot and slots.hyperparams == hp_rule.apply
    )
    lpo = make_rule("lpo")
    assert rule_slots(cfg, lpo).drift.func is rule_drift_slot
    with pytest.raises(ValueError, match="supplies the optimizer; do not also pass"):
        rule_slots(cfg, make_rule("learned_optimizer"), optax.sgd(1.0))
