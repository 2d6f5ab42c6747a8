"""Optimizer rules (family "optimizer"): the update direction of the inner learner.

An optimizer rule keeps its own state next to the agent's parameters and maps clipped gradients
to an update direction; PPO then applies  params <- params - learning_rate * direction.

  init_state(params) -> state                     shapes depend on `params` only, never on meta-params
  apply(meta_params, OptimizerInputs) -> (direction, state)     direction has the pytree of params

`adam` is the hand-designed baseline (exactly PPO's default `optax.scale_by_adam(eps=1e-5)`).
`learned_optimizer` follows OPEN (Goldie et al. 2024, arXiv 2407.07082): a small MLP applied to
every parameter element on its own, with inputs in sign / log-magnitude form (Lan et al. 2023,
arXiv 2302.06175) of the gradient and of momenta at several timescales, plus the lifetime
fraction. Unlike OPEN it is residual around Adam, so its initial meta-params are exactly Adam.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from inner_algos.config_checks import POSITIVE, POSITIVE_INT, Interval, check_fields
from inner_algos.rules.base import Rule
from inner_algos.rules.families import register_family

register_family("optimizer", slot="the update direction of the agent's parameters", inner_algos=("ppo",))


class OptimizerContext(NamedTuple):
    """What PPO also passes to an optimizer rule that asks for it (`owns_update`, e.g. OPEN's).

    update_fraction: `[]` update / (num_updates - 1): 0 at the first update, 1 at the last
        (OPEN's "training proportion").
    epoch_fraction: `[]` epoch / (num_epochs - 1) within the update (OPEN's "batch proportion").
    activations: pytree like the agent's params; each leaf `[width]` holds the mean |activation|
        over the minibatch of the neurons its layer outputs (`inner_algos.networks.layer_activations`).
    key: a PRNG key for this SGD step.
    params: the agent's params before the step, {"actor": ..., "critic": ...}.
    """

    update_fraction: jax.Array
    epoch_fraction: jax.Array
    activations: Any
    key: jax.Array
    params: Any


class OptimizerInputs(NamedTuple):
    """What an optimizer rule sees at one inner update.

    grads: gradient pytree (after PPO's global-norm clip), shaped like the agent's params.
    state: the rule's optimizer state (from `init_state`, then from the previous `apply`).
    progress: scalar lifetime fraction, update / lifetime (`inner_algos.ppo.lifetime_fraction`).
    context: `OptimizerContext` for rules with `owns_update` (None for the others).
    """

    grads: Any
    state: Any
    progress: jax.Array
    context: OptimizerContext | None = None


def _adam(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    return optax.scale_by_adam(b1=b1, b2=b2, eps=eps)


@dataclasses.dataclass(frozen=True)
class Adam(Rule):
    """Adam (Kingma & Ba 2015) as a fixed optimizer rule; no meta-parameters."""

    name: ClassVar[str] = "adam"
    family: ClassVar[str] = "optimizer"
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-5

    def __post_init__(self):
        _check_adam(self)

    def init_state(self, params):
        return _adam(self.b1, self.b2, self.eps).init(params)

    def apply(self, meta_params, inputs: OptimizerInputs):
        del meta_params
        return _adam(self.b1, self.b2, self.eps).update(inputs.grads, inputs.state)


class LearnedOptimizerState(NamedTuple):
    """adam: optax ScaleByAdamState; momenta: pytree like params with a leading `[len(betas)]` axis."""

    adam: Any
    momenta: Any


@dataclasses.dataclass(frozen=True)
class LearnedOptimizer(Rule):
    """OPEN-style per-parameter learned optimizer, residual around Adam.

    For every parameter element, with nu_hat Adam's bias-corrected second moment and
    x_hat = x / (sqrt(nu_hat) + eps) (scale-free inputs):
      features = [log(|g_hat| + 1e-8), sign(g_hat), log(|m_b_hat| + 1e-8), sign(m_b_hat) for each
                  b in betas, progress]                                 `[..., 2 (1 + len(betas)) + 1]`
      (d, s)   = tanh(features @ w1 + b1) @ w2                           `[..., 2]`
      direction = exp(s) * adam_direction + d
    where m_b <- b m_b + (1 - b) g are momenta at timescales 1 / (1 - b). `init` draws w1 at
    random and sets w2 to zero, so the initial rule is exactly Adam(b1, b2, eps) and the update
    scale is Adam's; the learned part changes the per-element step size (s) and adds a
    direction (d) in Adam's units.

    meta_params: {"w1": [F, hidden_size], "b1": [hidden_size], "w2": [hidden_size, 2]}.
    """

    name: ClassVar[str] = "learned_optimizer"
    family: ClassVar[str] = "optimizer"
    hidden_size: int = 16
    betas: tuple[float, ...] = (0.1, 0.5, 0.9, 0.99, 0.999)
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-5

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        check_fields(self, "rule", hidden_size=POSITIVE_INT)
        if not self.betas or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"rule.betas = {list(self.betas)!r} must be a non-empty list in [0, 1)")
        _check_adam(self)

    @property
    def num_features(self) -> int:
        return 2 * (1 + len(self.betas)) + 1

    def init(self, key: jax.Array) -> dict:
        w1 = jax.random.normal(key, (self.num_features, self.hidden_size))
        return {
            "w1": w1 / jnp.sqrt(self.num_features),
            "b1": jnp.zeros((self.hidden_size,)),
            "w2": jnp.zeros((self.hidden_size, 2)),
        }

    def init_state(self, params) -> LearnedOptimizerState:
        num = len(self.betas)
        momenta = jax.tree.map(lambda p: jnp.zeros((num,) + p.shape, p.dtype), params)
        return LearnedOptimizerState(_adam(self.b1, self.b2, self.eps).init(params), momenta)

    def apply(self, meta_params: dict, inputs: OptimizerInputs):
        adam_dir, adam_state = _adam(self.b1, self.b2, self.eps).update(inputs.grads, inputs.state.adam)
        betas = jnp.asarray(self.betas)
        nu_correction = 1.0 - self.b2**adam_state.count

        def one_leaf(g, momenta, nu, adam_d):
            expand = (slice(None),) + (None,) * g.ndim
            momenta = betas[expand] * momenta + (1.0 - betas[expand]) * g
            scale = jnp.sqrt(nu / nu_correction) + self.eps
            x = jnp.concatenate([g[None], momenta]) / scale  # [1 + len(betas), ...]
            x = jnp.moveaxis(x, 0, -1)
            feats = jnp.concatenate(
                [
                    jnp.log(jnp.abs(x) + 1e-8),
                    jnp.sign(x),
                    jnp.broadcast_to(inputs.progress, g.shape)[..., None],
                ],
                axis=-1,
            )
            hidden = jnp.tanh(feats @ meta_params["w1"] + meta_params["b1"])
            out = hidden @ meta_params["w2"]
            return jnp.exp(out[..., 1]) * adam_d + out[..., 0], momenta

        leaves = jax.tree.map(one_leaf, inputs.grads, inputs.state.momenta, adam_state.nu, adam_dir)
        direction = jax.tree.map(lambda _, pair: pair[0], inputs.grads, leaves)
        momenta = jax.tree.map(lambda _, pair: pair[1], inputs.grads, leaves)
        return direction, LearnedOptimizerState(adam_state, momenta)


def _check_adam(rule) -> None:
    decay = Interval(0, 1, high_open=True)
    check_fields(rule, "rule", b1=decay, b2=decay, eps=POSITIVE)
