"""What a disco rule taught the DiscoRL agent: LPG's analysis (Oh et al. 2020, section 5) carried to
DiscoRL's targets (Oh et al. 2025, Nature), with the statistics of `inner_algos.analysis`.

Train the agent under a rule of family "disco" with a meta-network (Disco103, a fresh "disco")
and, at a few points of its lifetime, collect a fresh batch of rollouts and read on the same steps

  logit change   log pi_hat(a|s) - log pi(a|s) for every action, centred over the actions `[S, N, A]`:
                 where the rule's policy target moves the agent's policy (the KL(pi_hat || pi) the
                 agent's loss minimises, `kl` `[S, N]`, says how far);
  advantage      the agent's own q head: Q(s, a) - mean_a Q(s, a) `[S, N, A]` (scalar Q of the
                 categorical head). A target pi_hat = pi exp(A) / Z (a policy-improvement step at
                 temperature 1) has logit change = advantage: the line y = x;
  y, z           the agent's prediction vectors: y(s_t) and z(s_t, a_t) at the action taken, as
                 probabilities `[S, N, n]` (Disco103: n = 600);
  return         the Monte-Carlo return discounted at the rule's value discount (bootstrap-free:
                 steps whose episode has not ended by the end of the batch are left out).

Then: does the logit change follow the advantage (correlation, relative scale, binned means), and
how much of the return does a linear read-out of y, and of z, recover on held-out steps: from all
n entries (wide, as LPG's picture) and from their READOUT_COMPONENTS principal directions
(narrow). With n = 600 on a small task (Catch-8x8 visits some 150 distinct states) the wide
read-out can be a lookup table of the states: it then recovers the share of the return's variance
that the state explains whatever y holds, from an untrained agent's y as well. So both are also
read from y0, z0, the same agent's initial params (before any update) on the same steps: what the
rule taught y is the difference; the narrow read-out asks whether the directions along which y
varies most are return-like.

The analysis batch is `rollouts` consecutive rollouts of the training length T: the rule sees each
`[T+1, B]` rollout exactly as the next update would (its state, the lifetime LSTM and the moving
averages, as after the last update; nothing learned, nothing carried between the rollouts).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from inner_algos.analysis import (
    FollowStats,
    ReturnFit,
    follow_stats,
    lifetime_batches,
    monte_carlo_return,
    return_fit,
)
from inner_algos.disco.config import DiscoConfig
from inner_algos.disco.update import (
    DiscoParts,
    DiscoState,
    init_state,
    make_parts,
    outputs,
    rollout,
    step_targets,
    update_step,
)
from inner_algos.envs import Task
from inner_algos.rules import Rule
from inner_algos.rules.disco import DiscoRule
from inner_algos.rules.disco.rule import kl
from inner_algos.rules.disco.values import take_action


class Snapshot(NamedTuple):
    """One analysis batch of `[S, N]` steps (S = rollouts x rollout_length) after `update` updates:
    logit_change, advantage `[S, N, A]`, kl `[S, N]`, y, z `[S, N, n]` (module docstring) and y0,
    z0 `[S, N, n]`, the same of the agent's initial params (before any update) on the same steps;
    mc_return `[S, N]` (of the rewards the agent sees); complete `[S, N]` bool, True where the
    step's episode ended inside the batch; episode_return `[]`, the mean return of the episodes
    that ended in the batch (NaN if none)."""

    update: int
    logit_change: np.ndarray
    advantage: np.ndarray
    kl: np.ndarray
    y: np.ndarray
    z: np.ndarray
    y0: np.ndarray
    z0: np.ndarray
    mc_return: np.ndarray
    complete: np.ndarray
    episode_return: float


def centred(x: jax.Array) -> jax.Array:
    """x `[..., A]` minus its mean over the last axis."""
    return x - jnp.mean(x, axis=-1, keepdims=True)


def collect(
    parts: DiscoParts, initial: dict, meta_params: Any, state: DiscoState, key: jax.Array, rollouts: int
):
    """`rollouts` consecutive rollouts of the agent in `state` (env state continued, nothing
    learned) and what the module docstring reads on them: a dict of Snapshot's arrays; y0 and z0
    are y and z of the agent's `initial` params on the same steps."""

    def one_rollout(env_state, k):
        env_state, roll = rollout(parts, state.params, env_state, state.env_params, k)
        targets, agent, _ = step_targets(parts, meta_params, state, roll)
        assert targets.meta is not None  # a DiscoRule (lifetime_snapshots)
        logits, taken = agent.logits[:-1], roll.actions[:-1]
        untrained = outputs(parts.net, initial["agent"], roll.obs[:-1])
        read = dict(
            logit_change=centred(targets.meta.pi - logits),
            advantage=centred(targets.values.q_value[:-1]),
            kl=kl(targets.meta.pi, logits),
            y=jax.nn.softmax(agent.y[:-1]),
            z=jax.nn.softmax(take_action(agent.z[:-1], taken)),
            y0=jax.nn.softmax(untrained.y),
            z0=jax.nn.softmax(take_action(untrained.z, taken)),
        )
        book = (roll.rewards, roll.is_terminal, roll.episode_return, roll.episode_done)
        return env_state, (read, book)

    _, (read, book) = jax.lax.scan(one_rollout, state.env_state, jax.random.split(key, rollouts))
    read, book = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), (read, book))
    reward, done, episode_return, ended = book
    discount = parts.rule.value_settings().discount
    mc_return, complete = monte_carlo_return(reward, done.astype(reward.dtype), discount)
    count = ended.sum()
    mean_return = jnp.where(count > 0, episode_return.sum() / jnp.maximum(count, 1), jnp.nan)
    return {**read, "mc_return": mc_return, "complete": complete, "episode_return": mean_return}


def lifetime_snapshots(
    rule: Rule,
    meta_params: Any,
    config: DiscoConfig,
    task: Task,
    key: jax.Array,
    fractions=(0.25, 0.5, 1.0),
    rollouts: int = 1,
) -> list[Snapshot]:
    """Trains the DiscoRL agent under `rule` (a DiscoRule: the picture reads its meta-network's
    targets) for config.num_updates updates and takes a Snapshot of `rollouts` fresh rollouts after
    each `analysis.update_points(fractions)`."""
    if not isinstance(rule, DiscoRule):
        raise ValueError(
            f"rule {rule.name!r} has no meta-network: the disco picture reads the targets pi_hat, y_hat, "
            "z_hat of a rule 'disco'"
        )
    parts = make_parts(config, task, rule)
    k_init, k_collect = jax.random.split(key)
    start = init_state(parts, meta_params, k_init)
    batches = lifetime_batches(
        functools.partial(update_step, parts),
        functools.partial(collect, parts, start.params),
        meta_params,
        start,
        config.num_updates,
        k_collect,
        fractions,
        rollouts,
    )
    return [Snapshot(point, episode_return=float(b.pop("episode_return")), **b) for point, b in batches]


READOUT_COMPONENTS = 8  # the narrow read-out's principal directions (LPG's y has 8 entries)


class Readout(NamedTuple):
    """The return read from one prediction vector (`analysis.return_fit`): from all its entries
    (wide) and from its READOUT_COMPONENTS principal directions (narrow)."""

    wide: ReturnFit
    narrow: ReturnFit


def readout(features: np.ndarray, snapshot: Snapshot, bins: int = 10) -> Readout:
    """The Readout of the snapshot's return from features `[S, N, n]`."""
    s = snapshot
    return Readout(
        return_fit(features, s.mc_return, s.complete, bins),
        return_fit(features, s.mc_return, s.complete, bins, components=READOUT_COMPONENTS),
    )


class PointSummary(NamedTuple):
    """A snapshot in numbers and curves: follow (the logit change against the advantage, all
    actions of all steps), kl (mean KL(pi_hat || pi)), the Readouts of the return from y, z(s, a_t)
    and from the initial params' y0, z0 on the same steps, episode_return."""

    update: int
    follow: FollowStats
    kl: float
    y: Readout
    z: Readout
    y0: Readout
    z0: Readout
    episode_return: float


def summarize(snapshot: Snapshot, bins: int = 10) -> PointSummary:
    """The PointSummary of a snapshot."""
    s = snapshot
    return PointSummary(
        update=s.update,
        follow=follow_stats(s.logit_change, s.advantage, bins),
        kl=float(np.mean(s.kl)),
        y=readout(s.y, s, bins),
        z=readout(s.z, s, bins),
        y0=readout(s.y0, s, bins),
        z0=readout(s.z0, s, bins),
        episode_return=s.episode_return,
    )
