"""Proximal policy optimisation in pure JAX over brax or gymnax, with slots for learned rules.

`make_ppo(config, task, rule)` returns an `InnerAlgo` of pure functions:

  init(meta_params, key) -> InnerState
  step(meta_params, state) -> (state, metrics)      one update: rollout, GAE, E epochs x M minibatches
  train(meta_params, key) -> (state, metrics)       lax.scan of `step`; metrics stacked `[num_updates]`
  evaluate(state, key) -> (return, length)          deterministic policy, full episodes

All are jittable and vmappable over `meta_params` and `key` (population x seeds). The rule fills
one slot (see `inner_algos.rules.base`): a "drift" rule sets the policy objective
L = -mean(r*A - drift(r, A)); other families are dispatched in `_slots`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from inner_algos.config_checks import (
    NON_NEGATIVE, POSITIVE, POSITIVE_INT, UNIT, UNIT_OPEN_CLOSED, Interval, OneOf, Widths, check_fields,
)
from inner_algos.envs import Task, episode_runner, make_env, sample_params
from inner_algos.networks import ACTIVATIONS, Critic, RunningStats, make_policy
from inner_algos.reward_norm import ReturnStats
from inner_algos.rules import DriftInputs, Rule
from inner_algos.rules.drift import ppo_clip_drift
from inner_algos.rules.hyperparams import HyperParams
from inner_algos.rules.learned_optimizer import OptimizerInputs




@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Static PPO settings. Defaults suit a small CPU run; see `runs/` for tuned ones.

    num_envs x rollout_length transitions per update are split into num_minibatches and
    passed over num_epochs times. gamma, gae_lambda, ent_coef, learning_rate and clip_eps are
    the defaults a "hyperparams" rule may replace; clip_eps also sets PPO-clip's drift when the
    rule is not a drift rule, and the value-clipping range. normalize_rewards divides the learner's
    rewards (after task.reward_scale) by a running std of the discounted return at the config's
    gamma (`inner_algos.reward_norm`); logged returns stay unscaled.
    """

    num_envs: int = 64
    rollout_length: int = 16
    num_updates: int = 50
    num_epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 3e-4
    anneal_lr: bool = False
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    value_clip: bool = False
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    actor_hidden: tuple[int, ...] = (64, 64)
    critic_hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    init_log_std: float = 0.0
    normalize_obs: bool = True
    normalize_rewards: bool = True
    eval_envs: int = 8

    def __post_init__(self):
        check_fields(self, "ppo", **{f: POSITIVE_INT for f in (
            "num_envs", "rollout_length", "num_updates", "num_epochs", "num_minibatches", "eval_envs")})
        batch = self.num_envs * self.rollout_length
        if batch % self.num_minibatches:
            raise ValueError(
                f"ppo.num_minibatches = {self.num_minibatches} does not divide the batch "
                f"num_envs x rollout_length = {self.num_envs} x {self.rollout_length} = {batch}; "
                f"choose a divisor of {batch}"
            )
        check_fields(self, "ppo", learning_rate=POSITIVE, max_grad_norm=POSITIVE, vf_coef=NON_NEGATIVE,
                     ent_coef=NON_NEGATIVE, gamma=UNIT_OPEN_CLOSED, gae_lambda=UNIT,
                     clip_eps=Interval(0, 1, low_open=True, high_open=True),
                     activation=OneOf(ACTIVATIONS), actor_hidden=Widths(), critic_hidden=Widths())
        for field in ("actor_hidden", "critic_hidden"):
            object.__setattr__(self, field, tuple(getattr(self, field)))

    @property
    def minibatch_size(self) -> int:
        return self.num_envs * self.rollout_length // self.num_minibatches


@struct.dataclass
class InnerState:
    """Everything one PPO lifetime carries between updates (shapes fixed across steps).

    env_state holds `[num_envs]`-batched env states; env_params the lifetime's randomised env
    parameters ({} for a fixed task); update counts completed updates; lifetime is this run's
    length in updates (config.num_updates unless a truncation schedule sets it): progress
    through training is `lifetime_fraction(state)`.
    """

    params: dict
    opt_state: Any
    obs_stats: RunningStats
    return_stats: ReturnStats
    env_state: Any
    env_params: dict
    key: jax.Array
    update: jax.Array
    lifetime: jax.Array


def lifetime_fraction(state: InnerState) -> jax.Array:
    """update / lifetime of this run, clipped to [0, 1], float32 `[]`: the one "progress through
    training" input (learning-rate annealing, hyperparameter schedules, learned optimizer)."""
    return jnp.clip(state.update / state.lifetime, 0.0, 1.0).astype(jnp.float32)


class Transition(NamedTuple):
    """One rollout step for all envs; every field `[num_envs, ...]` (stacked `[T, num_envs, ...]`)."""

    obs: jax.Array  # raw observation the action was chosen at
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array  # scaled by task.reward_scale
    termination: jax.Array  # true end of episode (not a time-limit cut)
    truncation: jax.Array  # time-limit cut: bootstrap instead of zeroing the value
    episode_return: jax.Array  # unscaled return of the episode that ended here (0 elsewhere)
    episode_length: jax.Array  # in agent steps
    episode_done: jax.Array


class InnerAlgo(NamedTuple):
    """The inner-loop contract shared by every meta-optimizer (see module docstring)."""

    init: Callable
    step: Callable
    train: Callable
    evaluate: Callable
    config: PPOConfig
    task: Task
    rule: Rule
    rollout_loss: Callable | None = None  # truncated meta-gradients (see make_ppo)

    @property
    def env_steps_per_update(self) -> int:
        return self.config.num_envs * self.config.rollout_length * self.task.action_repeat


def gae(rewards, values, last_value, termination, truncation, gamma, lam):
    """Generalised advantage estimation over `[T, N]` arrays (last_value `[N]`).

    Terminations stop bootstrapping; at a time-limit truncation the TD error is zeroed (the
    next observation belongs to a new episode) and the trace is cut, as in brax's PPO.
    Returns (advantages, value targets), both `[T, N]`.
    """
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    not_term = 1.0 - termination
    not_trunc = 1.0 - truncation
    deltas = (rewards + gamma * not_term * next_values - values) * not_trunc

    def backward(carry, xs):
        delta, nt, ntr = xs
        adv = delta + gamma * lam * nt * ntr * carry
        return adv, adv

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(last_value), (deltas, not_term, not_trunc), reverse=True
    )
    return advantages, advantages + values


def make_ppo(
    config: PPOConfig,
    task: Task,
    rule: Rule,
    optimizer: optax.GradientTransformation | None = None,
) -> InnerAlgo:
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
    play_eval_episodes = episode_runner(task, config.eval_envs)
    obs_size = env.observation_size
    policy = make_policy(env.discrete, env.action_size, config.actor_hidden, config.activation,
                         config.init_log_std)
    critic = Critic(config.critic_hidden, config.activation)
    drift_fn, hyperparams_fn, direction = _slots(config, rule, optimizer)
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), direction)

    def init(meta_params, key):
        del meta_params  # the inner state's shapes never depend on the rule
        k_actor, k_critic, k_env, k_state = jax.random.split(key, 4)
        dummy = jnp.zeros((obs_size,))
        params = {"actor": policy.init(k_actor, dummy), "critic": critic.init(k_critic, dummy)}
        env_params = sample_params(task, jax.random.fold_in(key, 1))  # once per lifetime
        env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_env, config.num_envs), env_params
        )
        return InnerState(
            params=params,
            opt_state=tx.init(params),
            obs_stats=RunningStats.create(obs_size),
            return_stats=ReturnStats.create(config.num_envs),
            env_state=env_state,
            env_params=env_params,
            key=k_state,
            update=jnp.zeros((), jnp.int32),
            lifetime=jnp.asarray(config.num_updates, jnp.int32),
        )

    def normalize(stats, obs):
        return stats.normalize(obs) if config.normalize_obs else obs

    def rollout(params, stats, env_state, env_params, key):
        def one_step(env_state, step_key):
            obs = normalize(stats, env_state.obs)
            dist = policy.distribution(params["actor"], obs)
            action = dist.sample(seed=step_key)
            value = critic.apply(params["critic"], obs)
            next_state = jax.vmap(env.step, in_axes=(0, 0, None))(env_state, action, env_params)
            info = next_state.info
            trunc = info["truncation"]
            done = next_state.done
            transition = Transition(
                obs=env_state.obs,
                action=action,
                log_prob=dist.log_prob(action),
                value=value,
                reward=next_state.reward * task.reward_scale,
                termination=done * (1.0 - trunc),
                truncation=trunc,
                episode_return=info["episode_metrics"]["sum_reward"] * done,
                episode_length=info["episode_metrics"]["length"] / task.action_repeat * done,
                episode_done=done,
            )
            return next_state, transition

        keys = jax.random.split(key, config.rollout_length)
        env_state, traj = jax.lax.scan(one_step, env_state, keys)
        last_value = critic.apply(params["critic"], normalize(stats, env_state.obs))
        return env_state, traj, last_value

    def collect(state: InnerState, key, hp: HyperParams):
        """Rollout of the agent in `state` (as data: params stop-gradiented) plus GAE.

        Returns (env_state, return_stats, traj `[T, N, ...]`, batch): batch is the tuple (obs,
        action, log_prob, value, advantage, target), each flattened to `[T * N, ...]`, obs
        normalised with the statistics used for acting; with normalize_rewards, GAE sees the
        rewards divided by the return statistics updated with this rollout.
        """
        env_state, traj, last_value = rollout(
            jax.lax.stop_gradient(state.params), state.obs_stats, state.env_state, state.env_params,
            key,
        )
        return_stats, rewards = state.return_stats, traj.reward
        if config.normalize_rewards:  # config.gamma: a learned gamma must not move the reward scale
            return_stats = return_stats.update(rewards, traj.episode_done, config.gamma)
            rewards = return_stats.normalize(rewards)
        adv, target = gae(
            rewards, traj.value, last_value, traj.termination, traj.truncation,
            hp.gamma, hp.gae_lambda,
        )
        batch = jax.tree.map(
            lambda x: x.reshape((-1,) + x.shape[2:]),
            (normalize(state.obs_stats, traj.obs), traj.action, traj.log_prob, traj.value, adv, target),
        )
        return env_state, return_stats, traj, batch

    def loss_fn(params, batch, drift_meta, hp, progress):
        obs, action, old_log_prob, old_value, adv, target = batch
        dist = policy.distribution(params["actor"], obs)
        log_prob = dist.log_prob(action)
        ratio = jnp.exp(log_prob - old_log_prob)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        drift = drift_fn(drift_meta, DriftInputs(ratio, adv, progress), hp)
        policy_loss = -jnp.mean(ratio * adv - drift)
        value = critic.apply(params["critic"], obs)
        value_loss = jnp.square(value - target)
        if config.value_clip:
            clipped = old_value + jnp.clip(value - old_value, -hp.clip_eps, hp.clip_eps)
            value_loss = jnp.maximum(value_loss, jnp.square(clipped - target))
        value_loss = 0.5 * jnp.mean(value_loss)
        entropy = jnp.mean(dist.entropy())
        total = policy_loss + config.vf_coef * value_loss - hp.ent_coef * entropy
        log_ratio = log_prob - old_log_prob
        stats = {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
            "ratio_mean": jnp.mean(ratio),
            "ratio_std": jnp.std(ratio),
            "drift_mean": jnp.mean(drift),
            "drift_active_frac": jnp.mean(drift > 0),
        }
        return total, stats

    grad_fn = jax.grad(loss_fn, has_aux=True)

    def sgd_step(carry, batch, meta_params, hp, progress):
        params, opt_state = carry
        grads, stats = grad_fn(params, batch, meta_params, hp, progress)
        updates, opt_state = tx.update(
            grads, opt_state, params, meta_params=meta_params, progress=progress
        )
        updates = jax.tree.map(lambda u: -hp.learning_rate * u, updates)
        params = optax.apply_updates(params, updates)
        stats["grad_norm"] = optax.global_norm(grads)
        return (params, opt_state), stats

    def step(meta_params, state: InnerState):
        progress = lifetime_fraction(state)
        hp = hyperparams_fn(meta_params, progress)
        if config.anneal_lr:
            hp = hp._replace(learning_rate=hp.learning_rate * (1.0 - progress))
        key, k_roll, k_perm = jax.random.split(state.key, 3)
        env_state, return_stats, traj, flat = collect(state, k_roll, hp)
        batch_size = config.num_envs * config.rollout_length

        def epoch(carry, epoch_key):
            perm = jax.random.permutation(epoch_key, batch_size)
            minibatches = jax.tree.map(
                lambda x: x[perm].reshape((config.num_minibatches, -1) + x.shape[1:]), flat
            )
            return jax.lax.scan(
                lambda c, b: sgd_step(c, b, meta_params, hp, progress), carry, minibatches
            )

        (params, opt_state), stats = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(k_perm, config.num_epochs)
        )
        obs_stats = state.obs_stats
        if config.normalize_obs:
            obs_stats = obs_stats.update(traj.obs)
        num_episodes = traj.episode_done.sum()
        denom = jnp.maximum(num_episodes, 1.0)
        no_episode = jnp.where(num_episodes > 0, 0.0, jnp.nan)
        metrics = {k: v.mean() for k, v in stats.items()}
        metrics.update(
            episode_return=traj.episode_return.sum() / denom + no_episode,
            episode_length=traj.episode_length.sum() / denom + no_episode,
            num_episodes=num_episodes,
            learning_rate=hp.learning_rate,
        )
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

    def train(meta_params, key):
        state = init(meta_params, key)
        return jax.lax.scan(
            lambda s, _: step(meta_params, s), state, None, length=config.num_updates
        )

    def evaluate(state: InnerState, key):
        """Mean return and length over config.eval_envs full episodes of the deterministic action
        (Gaussian mean, most likely category), in the lifetime's env params."""

        def act(obs, _):
            return policy.mode(state.params["actor"], normalize(state.obs_stats, obs))

        total, length = play_eval_episodes(act, key, state.env_params)
        return total.mean(), length.mean()

    # --- PPO's loss on a fresh rollout, for the meta-losses of truncated meta-gradients -------
    def rollout_loss(meta_params, state: InnerState, key):
        """PPO's (total loss, loss statistics) for the agent in `state` on a fresh rollout of it
        (data stop-gradiented), with the config's reference hyperparameters for the advantages,
        targets and loss. Differentiable in state.params only. `meta_objectives.meta_losses`
        turns it into a meta-loss."""
        hp = HyperParams(*(jnp.asarray(getattr(config, f), jnp.float32) for f in HyperParams._fields))
        _, _, _, batch = collect(state, key, hp)
        return loss_fn(state.params, batch, meta_params, hp, lifetime_fraction(state))

    return InnerAlgo(init, step, train, evaluate, config, task, rule, rollout_loss)


def _slots(config: PPOConfig, rule: Rule, optimizer: optax.GradientTransformation | None):
    """Resolves which computation fills each slot: (drift_fn, hyperparams_fn, direction).

    drift_fn(meta_params, DriftInputs, hp) -> drift; hyperparams_fn(meta_params, progress) -> hp;
    direction: an optax transform whose `update` takes the extra keyword arguments meta_params
    and progress. Slots the rule does not fill take PPO's hand-designed defaults (PPO-clip with
    hp.clip_eps, the config's hyperparameters, `optimizer` or Adam).
    """

    def config_hyperparams(meta_params, progress):
        del meta_params, progress
        return HyperParams(
            gamma=jnp.asarray(config.gamma),
            gae_lambda=jnp.asarray(config.gae_lambda),
            clip_eps=jnp.asarray(config.clip_eps),
            ent_coef=jnp.asarray(config.ent_coef),
            learning_rate=jnp.asarray(config.learning_rate),
        )

    def default_drift(meta_params, inputs, hp):
        del meta_params
        return ppo_clip_drift(inputs.ratio, inputs.advantage, hp.clip_eps)

    default_direction = optimizer if optimizer is not None else optax.scale_by_adam(eps=1e-5)
    if rule.family == "drift":
        return (
            (lambda meta, inputs, hp: rule.apply(meta, inputs)), config_hyperparams, default_direction
        )
    if rule.family == "hyperparams":
        return default_drift, rule.apply, default_direction
    if rule.family == "optimizer":
        if optimizer is not None:
            raise ValueError(
                f"rule {rule.name!r} of family 'optimizer' supplies the optimizer; "
                "do not also pass make_ppo(optimizer=...)"
            )

        def rule_update(updates, state, params=None, *, meta_params, progress):
            del params
            return rule.apply(meta_params, OptimizerInputs(updates, state, progress))

        return (
            default_drift,
            config_hyperparams,
            optax.GradientTransformationExtraArgs(rule.init_state, rule_update),
        )
    raise ValueError(
        f"rule {rule.name!r} of family {rule.family!r} has no slot in PPO; "
        "supported families: drift, hyperparams, optimizer"
    )
