"""Shared fixtures: a tiny task and PPO config that compile and run in seconds on a CPU."""

import pytest

from inner_algos.envs import Task
from inner_algos.ppo import PPOConfig


@pytest.fixture
def tiny_task():
    return Task(episode_length=50)


@pytest.fixture
def tiny_ppo():
    return PPOConfig(
        num_envs=16,
        rollout_length=8,
        num_updates=3,
        num_minibatches=2,
        num_epochs=1,
        actor_hidden=(16,),
        critic_hidden=(16,),
        eval_envs=2,
    )
