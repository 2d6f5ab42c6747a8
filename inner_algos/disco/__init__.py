"""The DiscoRL agent (Oh et al. 2025, "Discovering state-of-the-art reinforcement learning
algorithms", Nature; the published harness's `agent.py`), trained by a rule of the "disco" family:
Disco103 (`discovery.zoo.disco.load_disco103`), a fresh "disco" meta-network, or the actor-critic
baseline "disco_ac" (`inner_algos.rules.disco`).

  config.py    DiscoConfig, the static settings (the evaluation colab's agent by default)
  networks.py  the agent: MLP torso, policy and y heads, the LSTM action model's z, q, aux_pi
  update.py    rollouts, one update, a lifetime, the meta-loss's rollout term, make_disco
  meta_loss.py DiscoRL's meta-objective (what metagrad minimises) and its regulariser
  analysis.py  what a rule teaches over a lifetime: where pi_hat moves the policy against the q
               head's advantage, the return read from y and z (`discover inspect`'s picture)

`inner_algos.registry` registers it as inner algorithm "disco" (its config in the spec's [disco]
section) with `example` and `size_note` from here.
"""

from inner_algos.disco.config import DiscoConfig
from inner_algos.disco.update import DiscoAlgo, DiscoState, make_disco
from inner_algos.rules.disco import DiscoActorCritic, DiscoRule, MetaNetSettings


def example():
    """A DiscoRL agent that compiles in seconds: the sparse grid world with 16-step episodes, 2 envs
    x 4 steps, 2 updates, a small agent and a small fresh meta-network (prediction size 8, 11 bins)."""
    from inner_algos.envs import Task

    config = DiscoConfig(
        num_envs=2,
        rollout_length=4,
        num_updates=2,
        torso=(16,),
        model_lstm_size=8,
        model_head_hiddens=(8,),
        eval_envs=1,
    )
    net = MetaNetSettings(prediction_size=8, hidden_size=8, lifetime_hidden_size=8)
    rule = DiscoRule(net=net, num_bins=11, max_abs_value=5.0)
    return config, Task(source="gridworld", env_name="sparse", episode_length=16), rule


def size_note(config: DiscoConfig) -> str:
    """What sets one DiscoRL run's size, for the memory check's message."""
    return (
        f"disco.num_envs = {config.num_envs:,} environments x disco.rollout_length = "
        f"{config.rollout_length} steps (x the rule's prediction size per action)"
    )


__all__ = [
    "DiscoActorCritic",
    "DiscoAlgo",
    "DiscoConfig",
    "DiscoRule",
    "DiscoState",
    "example",
    "make_disco",
    "size_note",
]
