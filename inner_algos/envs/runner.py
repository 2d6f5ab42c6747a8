"""Whole episodes of a task: the evaluation's episode runner and the random agent's score."""

from __future__ import annotations

from inner_algos.envs.task import Task, make_env, sample_params


def episode_runner(task: Task, episodes: int):
    """`run(act, key, params) -> (returns, lengths)`, each `[episodes]`: plays `episodes` full
    episodes of `task` with env params `params` (length in agent steps; env steps are
    action_repeat times more).

    act(obs `[episodes, obs_size]`, key) -> actions `[episodes, ...]` of the env's action space.
    Resets use `key`, the per-step action keys `fold_in(key, 1)`. Episodes that end stop
    counting (the env keeps stepping, masked). The env is built here, outside any trace (brax
    builds arrays); `run` is pure and jittable.
    """
    import jax
    import jax.numpy as jnp

    env = make_env(task, auto_reset=False)

    def run(act, key, params):
        state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, episodes), params)
        step = jax.vmap(env.step, in_axes=(0, 0, None))

        def one_step(carry, k):
            state, total, length, alive = carry
            state = step(state, act(state.obs, k), params)
            total = total + alive * state.reward
            length = length + alive
            return (state, total, length, alive * (1.0 - state.done)), None

        zeros = jnp.zeros(episodes)
        step_keys = jax.random.split(jax.random.fold_in(key, 1), task.episode_length)
        carry = (state, zeros, zeros, jnp.ones(episodes))
        (_, total, length, _), _ = jax.lax.scan(one_step, carry, step_keys)
        return total, length

    return run


def random_actions(env, key, batch: int):
    """Uniform random actions `[batch, ...]` of `env`'s action space."""
    import jax

    if env.discrete:
        return jax.random.randint(key, (batch,), 0, env.action_size)
    return jax.random.uniform(key, (batch, env.action_size), minval=-1.0, maxval=1.0)


def random_policy_return(task: Task, key, episodes: int):
    """Mean return of uniform random actions over `episodes` full episodes: a scalar array,
    computed by one jitted rollout. A randomised task's episodes each sample their own params
    (the return is over the task distribution).

    The "random agent" reference of normalised scores (0 = random, as in Atari's human-normalised
    score).
    """
    import jax

    env = make_env(task, auto_reset=False)

    def act(obs, k):
        return random_actions(env, k, obs.shape[0])

    if not task.randomize:
        run = episode_runner(task, episodes)
        return jax.jit(lambda k: run(act, k, {})[0].mean())(key)
    run_one = episode_runner(task, 1)

    def one_episode(k):
        return run_one(act, k, sample_params(task, jax.random.fold_in(k, 2)))[0][0]

    return jax.jit(lambda k: jax.vmap(one_episode)(jax.random.split(k, episodes)).mean())(key)
