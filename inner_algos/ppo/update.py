"""PPO's training: the SGD step, the update step, a whole lifetime, and `make_ppo` that wires them.

`make_ppo(config, task, rule)` returns a `PPOAlgo` (the `InnerAlgo` contract) of pure functions:

  init(meta_params, key) -> InnerState
  step(meta_params, state) -> (state, metrics)      one update: rollout, GAE, E epochs x M minibatches
  train(meta_params, key) -> (state, metrics)       lax.scan of `step`; metrics stacked `[num_updates]`
  evaluate(state, key) -> (return, length)          deterministic policy, full episodes
  rollout_loss(meta_params, state, key) -> (loss, stats)  PPO's loss on a fresh rollout

All are jittable and vmappable over `meta_params` and `key` (population x seeds). The rule fills
one slot (`inner_algos.ppo.slots`): a "drift" rule sets the policy objective
L = -mean(r*A - drift(r, A)), a "hyperparams" rule the hyperparameters, an "optimizer" rule the
update direction.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from inner_algos.envs import Task, episode_runner, make_env, sample_params
from inner_algos.networks import Critic, RunningStats, layer_activations, make_policy
from inner_algos.ppo import acting
from inner_algos.ppo.config import PPOConfig
from inner_algos.ppo.losses import ppo_loss
from inner_algos.ppo.slots import rule_slots
from inner_algos.ppo.types import (
    Batch,
    InnerState,
    Metrics,
    Networks,
    PPOAlgo,
    PPOParts,
    lifetime_fraction,
)
from inner_algos.reward_norm import ReturnStats
from inner_algos.rl import episode_metrics
from inner_algos.rules import Rule
from inner_algos.rules.hyperparams import HyperParams
from inner_algos.rules.learned_optimizer import OptimizerContext


def init_state(parts: PPOParts, meta_params: Any, key: jax.Array) -> InnerState:
    """A fresh lifetime: actor and critic params, optimizer state, `[num_envs]` env states reset in
    env params sampled once for the lifetime."""
    del meta_params  # the inner state's shapes never depend on the rule
    config, env, networks = parts.config, parts.env, parts.networks
    k_actor, k_critic, k_env, k_state = jax.random.split(key, 4)
    dummy = jnp.zeros((env.observation_size,))
    params = {"actor": networks.policy.init(k_actor, dummy), "critic": networks.critic.init(k_critic, dummy)}
    env_params = sample_params(parts.task, jax.random.fold_in(key, 1))  # once per lifetime
    env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, config.num_envs), env_params)
    return InnerState(
        params=params,
        opt_state=parts.tx.init(params),
        obs_stats=RunningStats.create(env.observation_size),
        return_stats=ReturnStats.create(config.num_envs),
        env_state=env_state,
        env_params=env_params,
        key=k_state,
        update=jnp.zeros((), jnp.int32),
        lifetime=jnp.asarray(config.num_updates, jnp.int32),
    )


def loss_of(parts: PPOParts):
    """`ppo_loss` with this PPO's networks, drift slot and config flags bound:
    (params, batch, meta_params, hp, progress) -> (total, stats)."""
    return functools.partial(
        ppo_loss,
        networks=parts.networks,
        drift=parts.slots.drift,
        vf_coef=parts.config.vf_coef,
        value_clip=parts.config.value_clip,
    )


def sgd_step(parts: PPOParts, carry, batch: Batch, meta_params: Any, hp: HyperParams, progress, context=None):
    """One gradient step on a minibatch (fields `[B / M, ...]`): carry (params, opt_state) ->
    (carry, loss stats + grad_norm). The direction slot's output is scaled by -hp.learning_rate.
    context: (update_fraction, epoch_fraction, key) of this step when the rule owns the update
    (`RuleSlots.owns_update`); its `OptimizerContext` is then built here."""
    params, opt_state = carry
    grads, stats = jax.grad(loss_of(parts), has_aux=True)(params, batch, meta_params, hp, progress)
    extra = {} if context is None else {"context": optimizer_context(parts, params, batch, *context)}
    updates, opt_state = parts.tx.update(
        grads, opt_state, params, meta_params=meta_params, progress=progress, **extra
    )
    updates = jax.tree.map(lambda u: -hp.learning_rate * u, updates)
    params = optax.apply_updates(params, updates)
    stats["grad_norm"] = optax.global_norm(grads)
    return (params, opt_state), stats


def optimizer_context(parts: PPOParts, params, batch: Batch, update_fraction, epoch_fraction, key):
    """The `OptimizerContext` of one SGD step: the proportions, the key, params and the mean
    |activation| of every layer of actor and critic on the minibatch's observations."""
    activation = parts.config.activation
    activations = {net: layer_activations(params[net], batch.obs, activation) for net in ("actor", "critic")}
    return OptimizerContext(update_fraction, epoch_fraction, activations, key, params)


def train_epochs(
    parts: PPOParts,
    params,
    opt_state,
    flat: Batch,
    key: jax.Array,
    meta_params: Any,
    hp: HyperParams,
    progress,
    update_fraction=None,
):
    """config.num_epochs passes over the batch `flat` (`[T * N, ...]`), each a fresh permutation
    cut into num_minibatches. Returns ((params, opt_state), stats `[num_epochs, M]` per name).
    A rule that owns the update also gets each step's context (`sgd_step`), its key drawn from
    the epoch's key (update_fraction `[]`: this update's, see `update_step`)."""
    config = parts.config

    def minibatches(epoch_key):
        perm = jax.random.permutation(epoch_key, config.batch_size)
        return jax.tree.map(lambda x: x[perm].reshape((config.num_minibatches, -1) + x.shape[1:]), flat)

    def epoch(carry, epoch_key):
        return jax.lax.scan(
            lambda c, b: sgd_step(parts, c, b, meta_params, hp, progress), carry, minibatches(epoch_key)
        )

    def epoch_with_context(carry, xs):
        epoch_key, epoch_index = xs
        epoch_fraction = epoch_index / max(config.num_epochs - 1, 1)
        step_keys = jax.random.split(jax.random.fold_in(epoch_key, 1), config.num_minibatches)

        def step(c, batch_and_key):
            batch, step_key = batch_and_key
            context = (update_fraction, epoch_fraction, step_key)
            return sgd_step(parts, c, batch, meta_params, hp, progress, context)

        return jax.lax.scan(step, carry, (minibatches(epoch_key), step_keys))

    epoch_keys = jax.random.split(key, config.num_epochs)
    if parts.slots.owns_update:
        return jax.lax.scan(
            epoch_with_context, (params, opt_state), (epoch_keys, jnp.arange(config.num_epochs))
        )
    return jax.lax.scan(epoch, (params, opt_state), epoch_keys)


def update_step(parts: PPOParts, meta_params: Any, state: InnerState) -> tuple[InnerState, Metrics]:
    """One PPO update: hyperparameters from the slot (learning rate annealed when
    config.anneal_lr), a rollout + GAE, num_epochs x num_minibatches SGD steps, observation
    statistics updated with the rollout. Metrics are scalars (loss stats averaged over the SGD steps).
    A rule that owns the update (OPEN) keeps learning rate 1, unannealed."""
    config = parts.config
    progress = lifetime_fraction(state)
    hp = parts.slots.hyperparams(meta_params, progress)
    if config.anneal_lr and not parts.slots.owns_update:
        hp = hp._replace(learning_rate=hp.learning_rate * (1.0 - progress))
    # OPEN's training proportion: 0 at the first update, 1 at the last
    update_fraction = state.update / jnp.maximum(state.lifetime - 1, 1) if parts.slots.owns_update else None
    key, k_roll, k_perm = jax.random.split(state.key, 3)
    env_state, return_stats, traj, flat = acting.collect(parts, state, k_roll, hp)
    (params, opt_state), stats = train_epochs(
        parts, state.params, state.opt_state, flat, k_perm, meta_params, hp, progress, update_fraction
    )
    obs_stats = state.obs_stats
    if config.normalize_obs:
        obs_stats = obs_stats.update(traj.obs)
    metrics = {k: v.mean() for k, v in stats.items()}
    metrics.update(episode_metrics(traj), learning_rate=hp.learning_rate)
    new_state = InnerState(
        params=params,
        opt_state=opt_state,
        obs_stats=obs_stats,
        return_stats=return_stats,
        env_state=env_state,
        env_params=state.env_params,
        key=key,
        update=state.update + 1,
        lifetime=state.lifetime,
    )
    return new_state, metrics


def train(parts: PPOParts, meta_params: Any, key: jax.Array) -> tuple[InnerState, Metrics]:
    """A whole lifetime: init, then config.num_updates update steps under lax.scan (metrics
    stacked `[num_updates]`)."""
    state = init_state(parts, meta_params, key)
    return jax.lax.scan(
        lambda s, _: update_step(parts, meta_params, s), state, None, length=parts.config.num_updates
    )


def rollout_loss(parts: PPOParts, meta_params: Any, state: InnerState, key: jax.Array):
    """PPO's (total loss `[]`, loss statistics) for the agent in `state` on a fresh rollout of it
    (data stop-gradiented), with the config's reference hyperparameters for the advantages,
    targets and loss. Differentiable in state.params only. `meta_objectives.meta_losses`
    turns it into a meta-loss."""
    config = parts.config
    hp = HyperParams(*(jnp.asarray(getattr(config, f), jnp.float32) for f in HyperParams._fields))
    _, _, _, batch = acting.collect(parts, state, key, hp)
    return loss_of(parts)(state.params, batch, meta_params, hp, lifetime_fraction(state))


def make_ppo(
    config: PPOConfig,
    task: Task,
    rule: Rule,
    optimizer: optax.GradientTransformation | None = None,
) -> PPOAlgo:
    """Builds PPO for `task` with `rule` in its slot.

    optimizer: the update-direction transform (default `optax.scale_by_adam(eps=1e-5)`) unless
    the rule is of family "optimizer", which then supplies it; PPO clips the global gradient norm
    before it and scales its output by -learning_rate (annealed linearly to 0
    over the run's lifetime when config.anneal_lr; see `lifetime_fraction`).

    Differentiability w.r.t. meta-params (for truncated meta-gradients): the rollout runs on
    stop_gradient(params), so the environment dynamics, sampled actions, behaviour log-probs,
    values and rewards are data; meta-params reach the new params only through the update
    (advantages via gamma/lambda, the loss via drift/clip/entropy, the optimizer, the step size).
    """
    env = make_env(task)
    eval_episodes = episode_runner(task, config.eval_envs)
    policy = make_policy(
        env.discrete, env.action_size, config.actor_hidden, config.activation, config.init_log_std
    )
    networks = Networks(policy, Critic(config.critic_hidden, config.activation))
    slots = rule_slots(config, rule, optimizer)
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), slots.direction)
    parts = PPOParts(config, task, env, networks, slots, tx, eval_episodes)
    return PPOAlgo(
        init=functools.partial(init_state, parts),
        step=functools.partial(update_step, parts),
        train=functools.partial(train, parts),
        evaluate=functools.partial(acting.evaluate, parts),
        config=config,
        task=task,
        rule=rule,
        rollout_loss=functools.partial(rollout_loss, parts),
    )
