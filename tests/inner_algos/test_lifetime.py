"""Progress through training is the lifetime fraction of the run itself (update / its lifetime),
for whole lifetimes and for the truncated estimators' runs alike."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.meta_opt import make_meta_optimizer, parse_options
from discovery.meta_opt.problem import Problem
from discovery.meta_opt.truncated import TruncationSchedule, make_runs
from inner_algos.envs import Task
from inner_algos.ppo import make_ppo
from inner_algos.rules import make_rule
from meta_objectives import MetaObjective
from tests.support.builders import tiny_ppo_config

CFG = tiny_ppo_config(num_updates=4, anneal_lr=True)
TASK = Task(episode_length=50)
LR, SLOPE = 1e-3, 1.0  # learned schedule lr(p) = LR exp(SLOPE p), then annealed by (1 - p)


def _schedule_rule():
    rule = make_rule("hyperparams", learn=["learning_rate"], progress_degree=1, learning_rate=LR)
    return rule, {"learning_rate": jnp.array([np.log(LR), SLOPE], jnp.float32)}


def _expected_lr(age, lifetime):
    p = np.asarray(age) / lifetime
    return LR * np.exp(SLOPE * p) * (1.0 - p)


def test_whole_lifetime_schedules_use_num_updates():
    rule, meta = _schedule_rule()
    _, metrics = jax.jit(make_ppo(CFG, TASK, rule).train)(meta, jax.random.PRNGKey(0))
    np.testing.assert_allclose(metrics["learning_rate"], _expected_lr(np.arange(4), 4), rtol=1e-5)


def test_truncated_runs_schedule_and_anneal_over_their_own_lifetime():
    """Lifetimes of 12 updates with ppo.num_updates = 4: lr annealing and the learned schedule see
    update / 12 (with update / num_updates the annealed rate went negative after update 4)."""
    rule, meta = _schedule_rule()
    init_one, advance = make_runs(
        make_ppo(CFG, TASK, rule), TruncationSchedule("constant", 12, stagger=False)
    )
    runs = jax.vmap(init_one, in_axes=(None, 0))(meta, jax.random.split(jax.random.PRNGKey(0), 2))
    _, seg = jax.jit(lambda r: advance(meta, r, 13, shared=True))(runs)
    age = np.asarray(seg.age[:, 0])
    np.testing.assert_array_equal(age, list(range(12)) + [0])  # the run resets after 12 updates
    lr = np.asarray(seg.metrics["learning_rate"][:, 0])
    np.testing.assert_allclose(lr, _expected_lr(age, 12), rtol=1e-5, atol=1e-12)
    assert lr.min() >= 0.0


@pytest.mark.fast
@pytest.mark.parametrize(
    "options, field",
    [
        ({"truncation": "constant", "lifetime": 5}, "lifetime"),
        ({"truncation": "log_uniform", "min_lifetime": 2, "max_lifetime": 5}, "max_lifetime"),
    ],
)
def test_lifetimes_longer_than_num_updates_are_refused(options, field):
    problem = Problem(make_rule("hyperparams"), (TASK,), CFG, MetaObjective(kind="curve_area"))
    with pytest.raises(ValueError, match=f"meta_optimizer.{field} = 5 exceeds ppo.num_updates = 4"):
        make_meta_optimizer("pes", parse_options("pes", options), problem)
    make_meta_optimizer(
        "pes", parse_options("pes", {**options, field: 4}), problem
    )  # at most num_updates: accepted


def test_drift_rules_see_the_lifetime_fraction_of_each_update():
    """A drift that records the n/N it is called with: update u of a 4-update lifetime is u/4."""
    from inner_algos.rules.drift import PPOClipDrift

    seen = []

    class RecordingDrift(PPOClipDrift):
        def apply(self, meta_params, inputs):
            jax.debug.callback(lambda p: seen.append(float(p)), inputs.progress)
            return super().apply(meta_params, inputs)

    algo = make_ppo(CFG, TASK, RecordingDrift())
    jax.block_until_ready(jax.jit(algo.train)({}, jax.random.PRNGKey(0)))
    # one call per minibatch step: num_epochs x num_minibatches = 2 per update
    assert sorted(set(seen)) == [0.0, 0.25, 0.5, 0.75]
    assert len(seen) == CFG.num_updates * CFG.num_epochs * CFG.num_minibatches
