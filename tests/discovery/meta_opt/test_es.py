"""The ES adapter maximises through evosax (which minimises), ranks failures last, and validates options.

Known optimum: the concave quadratic f(x) = -|x - OPTIMUM|^2 over a 3-dim meta-parameter, with
member 0 of every population forced to NaN (a diverged inner run). Each strategy must bring its
mean within TOLERANCE of OPTIMUM in GENERATIONS generations from x = 0.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.meta_opt import META_OPTIMIZERS, make_meta_optimizer, parse_options
from discovery.meta_opt.problem import Evaluation
from discovery.spec import SpecError
from meta_objectives import z_score_shaping

pytestmark = pytest.mark.fast  # pure functions: part of `python -m pytest -m fast`

OPTIMUM = jnp.array([1.0, -2.0, 0.5])
GENERATIONS = 300
TOLERANCE = {"open_es": 0.02, "cma_es": 1e-3, "sep_cma_es": 1e-3, "snes": 1e-3, "pgpe": 0.15}
DECAY = {"sigma_decay": 0.99, "sigma_limit": 0.02, "lr_decay": 0.99, "lr_limit": 0.002}  # open_es only


def evaluation(f):
    """One task, one seed: the fitness `[M]` is every score there is (a NaN one is no diverged
    lifetime: the fitness's other non-finite case, ranked last)."""
    return Evaluation(f, f[:, None], f[:, None, None], None, jnp.zeros((f.shape[0], 1, 1), bool))


class Quadratic:
    """A duck-typed Problem: meta-params {"x": [3]}, fitness `[M]`, member 0 always NaN."""

    evaluate_mean = True
    paired = False
    env_steps_per_member = 0

    def init_meta_params(self, key):
        del key
        return {"x": jnp.zeros(3)}

    def fitness(self, members, key):
        del key
        f = -jnp.sum((members["x"] - OPTIMUM) ** 2, axis=-1)
        f = f.at[0].set(jnp.nan)
        return evaluation(f)

    def task_indices(self, key):
        del key
        return jnp.arange(1)  # one task, every generation


def run(options, generations=GENERATIONS):
    """(optimizer, final state, last metrics, how many times the jitted step was traced)."""
    optimizer = make_meta_optimizer("es", parse_options("es", options), Quadratic())
    traces = []

    def counted_step(state):
        traces.append(1)  # runs once per trace, not per call
        return optimizer.step(state)

    step = jax.jit(counted_step)
    state = optimizer.init(jax.random.PRNGKey(0))
    for _ in range(generations):
        state, metrics = step(state)
    return optimizer, state, metrics, len(traces)


@pytest.mark.parametrize("strategy", sorted(TOLERANCE))
def test_strategy_finds_the_maximum(strategy):
    optimizer, state, metrics, traces = run(
        {"strategy": strategy, "population_size": 16, "sigma_init": 0.5, "learning_rate": 0.1, **DECAY}
    )
    mean = optimizer.params(state)["mean"]["x"]
    assert np.max(np.abs(mean - OPTIMUM)) < TOLERANCE[strategy], mean
    assert int(metrics["num_nonfinite"]) == 1  # the NaN member is counted...
    assert np.isfinite(metrics["mean_fitness"]) and metrics["mean_fitness"] <= 0.0
    assert metrics["best_fitness"] >= np.nanmax(metrics["fitness"])  # ...and never the best
    assert traces == 1  # no generation retraced


def test_open_es_moves_uphill_from_the_first_generation():
    """Sign check: one generation must reduce the distance to the maximum (not run away)."""
    optimizer, state, _, _ = run({"population_size": 64, "sigma_init": 0.1, "learning_rate": 0.1}, 1)
    mean = optimizer.params(state)["mean"]["x"]
    assert float(jnp.sum((mean - OPTIMUM) ** 2)) < float(jnp.sum(OPTIMUM**2))


def test_best_params_are_the_best_member_seen():
    optimizer, state, metrics, _ = run({"population_size": 8, "sigma_init": 0.5}, 5)
    best = optimizer.params(state)["best"]["x"]
    assert float(-jnp.sum((best - OPTIMUM) ** 2)) == pytest.approx(float(metrics["best_fitness"]))


def test_all_members_failing_leaves_the_mean_unchanged():
    class AllNaN(Quadratic):
        def fitness(self, members, key):
            return evaluation(jnp.full(members["x"].shape[0], jnp.nan))

    optimizer = make_meta_optimizer("es", parse_options("es", {"population_size": 4}), AllNaN())
    state, metrics = jax.jit(optimizer.step)(optimizer.init(jax.random.PRNGKey(0)))
    assert int(metrics["num_nonfinite"]) == 4
    np.testing.assert_allclose(optimizer.params(state)["mean"]["x"], jnp.zeros(3), atol=1e-6)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"strategy": "nes"}, r"strategy = 'nes' is unknown \(did you mean 'snes'.*; valid: open_es"),
        ({"population_size": 5}, "population_size = 5 must be even"),
        ({"sigma_init": 0.0}, "meta_optimizer.sigma_init = 0.0 must be > 0"),
        ({"sigma_decay": 1.5}, "meta_optimizer.sigma_decay = 1.5 must be in"),
        ({"popsize": 8}, "unknown key.*meta_optimizer.popsize.*allowed keys"),
        ({"population_size": "8"}, "meta_optimizer.population_size = '8' has the wrong type"),
    ],
)
def test_bad_options_name_the_key(options, message):
    with pytest.raises(SpecError, match=message):
        parse_options("es", options)


def test_unknown_meta_optimizer_lists_valid_names():
    assert "es" in META_OPTIMIZERS
    with pytest.raises(SpecError, match="meta_optimizer.name = 'ga' is unknown; valid: .*es"):
        make_meta_optimizer("ga", {}, Quadratic())


def test_factories_take_typed_options_not_a_table():
    """The spec validates options once; a raw table given to a factory is a mistake, named."""
    with pytest.raises(TypeError, match=r"of type ESOptions, got dict; build them with parse_options"):
        make_meta_optimizer("es", {"population_size": 4}, Quadratic())


def test_z_score_shaping_by_hand():
    """evosax-side fitness (minimised, failures +inf): [1, 2, 3, inf] -> mean 2, std sqrt(2/3)."""
    z = z_score_shaping(jnp.array([1.0, 2.0, 3.0, jnp.inf]))
    s = np.sqrt(2.0 / 3.0)
    np.testing.assert_allclose(z, [-1 / s, 0.0, 1 / s, 1 / s], rtol=1e-6)  # failure = the worst
    np.testing.assert_array_equal(z_score_shaping(jnp.full(3, jnp.inf)), 0.0)


@pytest.mark.parametrize("strategy", ["open_es", "pgpe"])
def test_z_score_shaping_finds_the_maximum_and_changes_the_step(strategy):
    options = {
        "strategy": strategy,
        "population_size": 16,
        "sigma_init": 0.5,
        "learning_rate": 0.1,
        "fitness_shaping": "z_score",
        **(DECAY if strategy == "open_es" else {}),
    }
    optimizer, state, metrics, _ = run(options)
    mean = optimizer.params(state)["mean"]["x"]
    assert np.max(np.abs(mean - OPTIMUM)) < TOLERANCE[strategy], mean
    ranked = run({**options, "fitness_shaping": "centered_rank"}, 2)
    shaped = run(options, 2)
    assert not np.allclose(ranked[0].params(ranked[1])["mean"]["x"], shaped[0].params(shaped[1])["mean"]["x"])


def test_z_score_shaping_is_refused_where_it_does_nothing():
    with pytest.raises(SpecError, match="fitness_shaping = 'z_score' applies to strategies open_es, pgpe"):
        parse_options("es", {"strategy": "cma_es", "fitness_shaping": "z_score"})
