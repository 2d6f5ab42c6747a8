"""Units: episode_length counts agent steps (each action_repeat physics frames); env steps count
physics frames, for training and for evaluation episodes."""

import jax
import jax.numpy as jnp
import numpy as np

from discovery.meta_opt.problem import run_env_steps
from inner_algos.envs import Task, episode_runner, make_env
from inner_algos.ppo import PPOConfig, make_ppo
from inner_algos.rules import make_rule
from meta_objectives import MetaObjective

TASK = Task(env_name="reacher", episode_length=6, action_repeat=2)  # reacher never terminates


def test_an_episode_lasts_episode_length_agent_steps():
    env = make_env(TASK)
    step = jax.jit(lambda s, a: env.step(s, a, {}))
    state = jax.jit(lambda k: env.reset(k, {}))(jax.random.PRNGKey(0))
    done = []
    for _ in range(12):
        state = step(state, jnp.zeros(env.action_size))
        done.append(float(state.done))
    np.testing.assert_array_equal(done, [0, 0, 0, 0, 0, 1] * 2)  # not after 3 agent steps


def test_evaluation_episodes_are_counted_in_agent_steps_and_env_steps():
    run = episode_runner(TASK, episodes=2)
    _, lengths = jax.jit(lambda k: run(lambda obs, _: jnp.zeros((2, 2)), k, {}))(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(lengths, [6, 6])
    config = PPOConfig(num_envs=4, rollout_length=3, num_updates=2, num_minibatches=1, eval_envs=5)
    algo = make_ppo(config, TASK, make_rule("ppo_clip"))
    # training: 2 updates x 4 envs x 3 agent steps x 2 frames; evaluation: 5 episodes x 6 x 2
    assert run_env_steps(algo, MetaObjective(kind="eval_return")) == 2 * 4 * 3 * 2 + 5 * 6 * 2
    _, metrics = jax.jit(algo.train)({}, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(metrics["episode_length"], [np.nan, 6.0])  # the first ends at step 6
