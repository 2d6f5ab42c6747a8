"""Shared fixtures: a tiny task and PPO config that compile and run in seconds on a CPU."""

import pytest

from inner_algos.envs import Task
from tests.support.builders import tiny_ppo_config


@pytest.fixture
def tiny_task():
    return Task(episode_length=50)


@pytest.fixture
def tiny_ppo():
    return tiny_ppo_config()
