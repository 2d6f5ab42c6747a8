"""The DiscoRL agent's training: rollouts, one update, a lifetime, and `make_disco` that wires
them into the inner-algorithm contract (`inner_algos.contract`).

One update (the published harness's `Agent.learner_step`, on-policy):
  1. a rollout of rollout_length steps in num_envs envs with the acting params (no gradient):
     observations `[T+1, B]` (the last for bootstrapping), actions, the behaviour logits,
     rewards and terminal flags `[T, B]`;
  2. the agent's and its target network's outputs on the T+1 observations; the rule's targets
     (`rule.apply`) with the rule's state (lifetime LSTM, moving averages) carried in DiscoState;
  3. one optimizer step on the mean per-step loss (`rule.agent_loss`);
  4. the target network moves towards the params the rollout was taken with
     (target <- c target + (1 - c) params).
With a replay buffer (`DiscoConfig.replay_capacity`), step 2-3 read a batch drawn from the buffer
after the rollout joins it (the colab's loop), not the rollout itself.
Our envs reset themselves: an episode's last step is followed by the next episode's first
observation, so every step of a rollout is a real transition (the harness's dm_env rollouts carry
an extra, masked step per episode at the terminal observation).

Meta-gradients (`rollout_loss`, `inner_algos.disco.meta_loss`): the update is differentiable in
the rule's meta-params through the targets (the rule's `agent_loss` with backprop, as the
harness's `is_meta_training`). What passes through `as_data` is a constant to them: the params a
rollout acts with, the agent's and target network's outputs the rule reads, and Adam's second
moment (the harness's stop-gradient denominator).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import optax
from flax import struct

from inner_algos.disco import replay as replay_buffer
from inner_algos.disco.config import DiscoConfig
from inner_algos.disco.meta_loss import DEFAULT_COEFS, MetaLossCoefs, regulariser
from inner_algos.disco.networks import DiscoAgentNet
from inner_algos.envs import Task, episode_runner, make_env, sample_params
from inner_algos.rl import episode_metrics, step_record
from inner_algos.rules import Rule
from inner_algos.rules.disco import (
    AgentOutputs,
    DiscoActorCritic,
    DiscoInputs,
    DiscoMetaState,
    DiscoRule,
    DiscoTargets,
    MetaOutputs,
)
from inner_algos.rules.disco.rule import entropy, kl
from inner_algos.rules.disco.values import take_action, value_outputs

Metrics = dict[str, jax.Array]
DiscoFamilyRule = DiscoRule | DiscoActorCritic  # the rules of family "disco"


def outputs(net: DiscoAgentNet, params: Any, obs: jax.Array) -> AgentOutputs:
    """The agent's outputs on obs `[..., obs_size]`."""
    return cast(AgentOutputs, net.apply(params, obs))


def as_data(x: Any) -> Any:
    """`x` (any pytree) as a constant to meta-gradients (stop_gradient): every quantity the
    module docstring names passes through here, so a finite-difference test can hold them fixed."""
    return jax.lax.stop_gradient(x)


@struct.dataclass
class DiscoState:
    """One lifetime between updates: params (the agent's, under "agent"), target_params, the
    optimizer's state, the rule's state, `[num_envs]` envs and their params, key, update, lifetime,
    and the replay buffer (None when on-policy)."""

    params: dict
    target_params: dict
    opt_state: Any
    meta_state: DiscoMetaState
    env_state: Any
    env_params: dict
    key: jax.Array
    update: jax.Array
    lifetime: jax.Array
    replay: replay_buffer.Replay | None = None


class Rollout(NamedTuple):
    """obs `[T+1, B, obs]`, actions `[T+1, B]` (the last never trained on), behaviour_logits
    `[T+1, B, A]`, rewards and is_terminal `[T, B]`, and the episode bookkeeping `[T, B]` of
    `inner_algos.rl.step_record` (episode_return, episode_length, episode_done)."""

    obs: jax.Array
    actions: jax.Array
    behaviour_logits: jax.Array
    rewards: jax.Array
    is_terminal: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    episode_done: jax.Array


class DiscoParts(NamedTuple):
    """The static pieces of one DiscoRL agent: config, task, env (unbatched), net, rule, the
    optimizer, the evaluation runner."""

    config: DiscoConfig
    task: Task
    env: Any
    net: DiscoAgentNet
    rule: DiscoFamilyRule
    tx: optax.GradientTransformation
    eval_episodes: Callable


class DiscoAlgo(NamedTuple):
    """The DiscoRL agent as an inner algorithm (`inner_algos.contract.InnerAlgo`)."""

    init: Callable
    step: Callable
    train: Callable
    evaluate: Callable
    rollout_loss: Callable | None
    meta_regulariser: Callable | None
    config: DiscoConfig
    task: Task
    rule: Rule

    @property
    def env_steps_per_update(self) -> int:
        return self.config.batch_size * self.task.action_repeat

    @property
    def loss_metrics(self) -> tuple[str, ...]:
        return ("loss", "pi_loss", "value_loss")


def scale_by_adam_sg_denom(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> optax.GradientTransformation:
    """Adam's scaling m_hat / (sqrt(v_hat) + eps) with no gradient through the denominator (the
    harness's `optimizers.scale_by_adam_sg_denom`: meta-gradients flow through m only)."""

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update(updates, state, params=None):
        del params
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment(updates, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        mu_hat = optax.tree.bias_correction(mu, b1, count)
        nu_hat = as_data(optax.tree.bias_correction(nu, b2, count))
        out = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
        return out, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def init_state(parts: DiscoParts, meta_params: Any, key: jax.Array) -> DiscoState:
    """A fresh lifetime: params (target = params), optimizer and rule states, envs reset."""
    del meta_params  # the state's shapes never depend on the rule's params
    config, env = parts.config, parts.env
    k_net, k_env, k_state = jax.random.split(key, 3)
    params = {"agent": parts.net.init(k_net, jnp.zeros((env.observation_size,)))}
    env_params = sample_params(parts.task, jax.random.fold_in(key, 1))
    env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, config.num_envs), env_params)
    replay = None
    if config.replay_capacity:
        shapes = jax.eval_shape(lambda: rollout(parts, params, env_state, env_params, k_state)[1])
        replay = replay_buffer.empty(config.replay_capacity, trajectories(shapes))
    return DiscoState(
        params=params,
        target_params=params,
        opt_state=parts.tx.init(params),
        meta_state=parts.rule.initial_meta_state(),
        env_state=env_state,
        env_params=env_params,
        key=k_state,
        update=jnp.zeros((), jnp.int32),
        lifetime=jnp.asarray(config.num_updates, jnp.int32),
        replay=replay,
    )


def rollout(parts: DiscoParts, params: dict, env_state, env_params: dict, key: jax.Array):
    """config.rollout_length steps of the stochastic policy in the `[num_envs]` envs, acting with
    as_data(params). Returns (env_state after it, Rollout)."""
    params = as_data(params)
    task, env = parts.task, parts.env

    def one_step(env_state, step_key):
        logits = outputs(parts.net, params["agent"], env_state.obs).logits
        action = jax.random.categorical(step_key, logits)
        next_state = jax.vmap(env.step, in_axes=(0, 0, None))(env_state, action, env_params)
        record = step_record(next_state, task)
        step = (env_state.obs, action, logits, record["reward"], next_state.done)
        book = (record["episode_return"], record["episode_length"], record["episode_done"])
        return next_state, (step, book)

    keys = jax.random.split(key, parts.config.rollout_length + 1)
    env_state, (steps, book) = jax.lax.scan(one_step, env_state, keys[:-1])
    obs, actions, logits, rewards, done = steps
    last_logits = outputs(parts.net, params["agent"], env_state.obs).logits
    last_action = jax.random.categorical(keys[-1], last_logits)
    return env_state, Rollout(
        obs=jnp.concatenate([obs, env_state.obs[None]], axis=0),
        actions=jnp.concatenate([actions, last_action[None]], axis=0),
        behaviour_logits=jnp.concatenate([logits, last_logits[None]], axis=0),
        rewards=rewards,
        is_terminal=done,
        episode_return=book[0],
        episode_length=book[1],
        episode_done=book[2],
    )


def step_targets(
    parts: DiscoParts, meta_params: Any, state: DiscoState, roll: Rollout | replay_buffer.Trajectories
) -> tuple[DiscoTargets, AgentOutputs, AgentOutputs]:
    """Step 2 of the module docstring: (the rule's targets on `roll`, differentiable in
    meta_params; the agent's and its target network's outputs `[T+1, B, ...]` they read, data)."""
    agent_out = as_data(outputs(parts.net, state.params["agent"], roll.obs))
    target_out = as_data(outputs(parts.net, state.target_params["agent"], roll.obs))
    inputs = DiscoInputs(
        agent_out,
        target_out,
        roll.behaviour_logits,
        roll.actions,
        roll.rewards,
        roll.is_terminal,
        state.meta_state,
    )
    return parts.rule.apply(meta_params, inputs), agent_out, target_out


def trajectories(roll: Rollout) -> replay_buffer.Trajectories:
    """What the replay buffer keeps of a rollout (time-major, `[T(+1), B]`)."""
    return replay_buffer.Trajectories(
        roll.obs, roll.actions, roll.behaviour_logits, roll.rewards, roll.is_terminal
    )


def learn(parts: DiscoParts, meta_params: Any, state: DiscoState, roll: Rollout | replay_buffer.Trajectories):
    """Steps 2-4 of the module docstring on roll (a rollout or a batch drawn from the buffer).
    Returns (params, target_params, opt_state, meta_state, stats: the loss, its terms, the
    gradient's norm and, for a meta-network's targets, `meta_output_stats`), differentiable in
    meta_params."""
    net, rule = parts.net, parts.rule
    targets, _, target_out = step_targets(parts, meta_params, state, roll)

    def loss_fn(params):
        out = outputs(net, params["agent"], roll.obs)
        per_step, terms = rule.agent_loss(out, targets, roll.actions, roll.is_terminal, backprop=True)
        return jnp.mean(per_step), terms

    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = parts.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    target_params = rule.update_target_params(state.target_params, state.params)
    stats = {**terms, "loss": loss, "grad_norm": optax.global_norm(grads)}
    if targets.meta is not None:
        stats.update(meta_output_stats(targets.meta, target_out.logits[:-1]))
    return params, target_params, opt_state, targets.meta_state, stats


def meta_output_stats(meta: MetaOutputs, target_logits: jax.Array) -> Metrics:
    """What DiscoRL's meta-loss regularises of one update's targets (`meta_loss.regulariser`):
    the means of pi_hat, y_hat, z_hat (logits `[T, B, ...]`) and the mean KL(pi_target || pi_hat),
    pi_target the target network's policy (target_logits `[T, B, A]`, data). Each `[]`."""
    return {
        "pi_hat_mean": jnp.mean(meta.pi),
        "y_hat_mean": jnp.mean(meta.y),
        "z_hat_mean": jnp.mean(meta.z),
        "target_kl": jnp.mean(kl(target_logits, meta.pi)),
    }


def learn_from_replay(
    parts: DiscoParts,
    meta_params: Any,
    state: DiscoState,
    replay: replay_buffer.Replay,
    roll: Rollout,
    key: jax.Array,
):
    """(learn's outputs, the buffer): roll joins replay, then learn on config.replay_batch
    trajectories drawn from it, once it holds that many; before, nothing changes and the stats
    are 0 (finite: a NaN loss would mark the lifetime diverged)."""
    replay = replay_buffer.add(replay, trajectories(roll))
    batch = replay_buffer.sample(replay, key, parts.config.replay_batch)

    def update():
        return learn(parts, meta_params, state, batch)

    def skip():
        stats = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(update)[-1])
        return state.params, state.target_params, state.opt_state, state.meta_state, stats

    return jax.lax.cond(replay.held >= parts.config.replay_batch, update, skip), replay


def update_step(parts: DiscoParts, meta_params: Any, state: DiscoState) -> tuple[DiscoState, Metrics]:
    """One update (module docstring); metrics: learn's stats and the episode metrics."""
    key, k_roll = jax.random.split(state.key)
    env_state, roll = rollout(parts, state.params, state.env_state, state.env_params, k_roll)
    if state.replay is None:
        learned, replay = learn(parts, meta_params, state, roll), None
    else:
        learned, replay = learn_from_replay(
            parts, meta_params, state, state.replay, roll, jax.random.fold_in(k_roll, 1)
        )
    params, target_params, opt_state, meta_state, metrics = learned
    metrics.update(episode_metrics(roll))
    new_state = dataclasses.replace(
        state,
        params=params,
        target_params=target_params,
        opt_state=opt_state,
        meta_state=meta_state,
        env_state=env_state,
        key=key,
        update=state.update + 1,
        replay=replay,
    )
    return new_state, metrics


def train(parts: DiscoParts, meta_params: Any, key: jax.Array) -> tuple[DiscoState, Metrics]:
    """A whole lifetime: init, then config.num_updates steps under lax.scan (metrics `[num_updates]`)."""
    state = init_state(parts, meta_params, key)
    return jax.lax.scan(
        lambda s, _: update_step(parts, meta_params, s), state, None, length=parts.config.num_updates
    )


def rollout_loss(
    parts: DiscoParts,
    meta_params: Any,
    state: DiscoState,
    key: jax.Array,
    coefs: MetaLossCoefs = DEFAULT_COEFS,
) -> tuple[jax.Array, Metrics]:
    """(the meta-loss's terms on a fresh rollout `[]`, stats) for the agent in `state`
    (`meta_loss` module docstring): -mean log pi(a|s) A - coefs.entropy H(pi) -
    coefs.prediction_entropy (H(y) + H(z(s, a))), A the rule's normalised Retrace advantage (data).
    stats: "policy_loss" (that sum), "pg_loss", "entropy". Differentiable in state.params."""
    del meta_params
    _, roll = rollout(parts, state.params, state.env_state, state.env_params, key)
    out = outputs(parts.net, state.params["agent"], roll.obs)
    data = as_data(out)
    target_q = as_data(outputs(parts.net, state.target_params["agent"], roll.obs).q)
    meta_state = state.meta_state
    values, _, _ = value_outputs(
        data.q,
        target_q,
        data.logits,
        roll.behaviour_logits,
        roll.actions,
        roll.rewards,
        roll.is_terminal,
        meta_state.adv_ema,
        meta_state.td_ema,
        parts.rule.value_settings(),
    )
    taken = roll.actions[:-1]
    log_pi = take_action(jax.nn.log_softmax(out.logits[:-1]), taken)
    pg_loss = -jnp.mean(log_pi * values.normalized_adv)
    pi_entropy = jnp.mean(entropy(out.logits[:-1]))
    prediction_entropy = jnp.mean(entropy(out.y)) + jnp.mean(entropy(take_action(out.z[:-1], taken)))
    loss = pg_loss - coefs.entropy * pi_entropy - coefs.prediction_entropy * prediction_entropy
    return loss, {"policy_loss": loss, "pg_loss": pg_loss, "entropy": pi_entropy}


def evaluate(parts: DiscoParts, state: DiscoState, key: jax.Array):
    """Mean return and length `[]` over config.eval_envs full episodes of the most likely action."""

    def act(obs, _):
        return jnp.argmax(outputs(parts.net, state.params["agent"], obs).logits, axis=-1)

    total, length = parts.eval_episodes(act, key, state.env_params)
    return total.mean(), length.mean()


def make_parts(config: DiscoConfig, task: Task, rule: Rule) -> DiscoParts:
    """The static pieces for `task` (a discrete-action env) and `rule` (family "disco"), checked."""
    if not isinstance(rule, (DiscoRule, DiscoActorCritic)):
        raise ValueError(
            f"rule {rule.name!r} fills the {rule.family!r} slot; the DiscoRL agent takes a rule of "
            "family 'disco' (disco, disco_ac)"
        )
    env = make_env(task)
    if not env.discrete:
        raise ValueError(
            f"task {task.label!r} has continuous actions; the DiscoRL agent needs discrete actions"
        )
    net = DiscoAgentNet(
        num_actions=env.action_size,
        prediction_size=rule.prediction_size,
        num_bins=rule.num_bins,
        torso=config.torso,
        head_w_init_std=config.head_w_init_std,
        lstm_size=config.model_lstm_size,
        head_hiddens=config.model_head_hiddens,
    )
    tx = optax.chain(
        scale_by_adam_sg_denom(), optax.clip(config.max_abs_update), optax.scale(-config.learning_rate)
    )
    return DiscoParts(config, task, env, net, rule, tx, episode_runner(task, config.eval_envs))


def make_disco(config: DiscoConfig, task: Task, rule: Rule) -> DiscoAlgo:
    """Builds the DiscoRL agent for `task` trained by `rule` (family "disco"); the meta-loss's
    regulariser of the targets only where the rule has a meta-network (not disco_ac)."""
    parts = make_parts(config, task, rule)
    return DiscoAlgo(
        init=functools.partial(init_state, parts),
        step=functools.partial(update_step, parts),
        train=functools.partial(train, parts),
        evaluate=functools.partial(evaluate, parts),
        rollout_loss=functools.partial(rollout_loss, parts),
        meta_regulariser=regulariser if isinstance(rule, DiscoRule) else None,
        config=config,
        task=task,
        rule=rule,
    )
