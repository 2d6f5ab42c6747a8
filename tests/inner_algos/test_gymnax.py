"""gymnax as a second task source: the env interface, discrete-action PPO, task labels, and
brax results unchanged by the sources (against numbers of the code before sources existed)."""

import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.job.runner import run_job
from inner_algos.envs import Task, make_env, parse_label, random_policy_return
from inner_algos.networks import make_policy
from inner_algos.ppo import make_ppo, rule_slots
from inner_algos.rules import DriftInputs, make_rule
from tests.support import tiny_job
from tests.support.builders import tiny_eval_argv, tiny_ppo_config

CARTPOLE = Task(source="gymnax", env_name="CartPole-v1")
TINY = tiny_ppo_config(num_envs=8, num_updates=2)


@pytest.mark.slow  # the golden histories of tests/discovery/test_shipped_specs.py guard brax too
def test_brax_results_are_those_of_the_code_before_sources():
    """Reference numbers: the code before task sources (commit 827b118, with the meta-objective of
    every task defined on the latest ended episodes; the PPO numbers are also those of 92d9eb3),
    run as `run_job(tiny_job.table(dir, job={"evaluate_mean": True}), progress=False)` on 1 CPU
    device, and PPO-clip on Task(episode_length=50) with conftest's tiny_ppo, PRNGKey(1) for
    training, PRNGKey(2) for evaluation, PRNGKey(0) and 8 episodes for the random-policy return.
    Reward normalisation, which that code did not have, is off.

    Exact where the value is a count: inverted_pendulum pays 1 per step, so fitness, returns and
    the evaluation are means of integer episode lengths, which move only if an episode ends at
    another step (they reproduce on Intel Xeon and AMD EPYC). The policy loss is not a count."""
    expected = [  # (fitness_mean, fitness_max, fitness_min, mean_fitness, best_so_far)
        (10.94444465637207, 11.28888988494873, 10.777777671813965, 9.898990631103516, 11.28888988494873),
        (10.507407903671265, 10.60740852355957, 10.407407760620117, 10.857142448425293, 11.28888988494873),
        (11.321717977523804, 11.988889694213867, 11.070708274841309, 11.655555725097656, 11.988889694213867),
    ]
    off = {"normalize_rewards": False}
    with tempfile.TemporaryDirectory() as tmp:
        table = tiny_job.table(Path(tmp) / "run", job={"evaluate_mean": True}, ppo=off)
        result = run_job(table, progress=False)
    got = [
        (r["fitness_mean"], r["fitness_max"], r["fitness_min"], r["mean_fitness"], r["best_so_far"])
        for r in result.history
    ]
    assert got == expected

    task = Task(episode_length=50)
    config = tiny_ppo_config(**off)
    algo = make_ppo(config, task, make_rule("ppo_clip"))
    state, metrics = jax.jit(algo.train)({}, jax.random.PRNGKey(1))
    assert float(metrics["episode_return"][-1]) == 17.16666603088379
    # near zero (normalised advantages nearly cancel), so it is mostly the float32 rounding of
    # three updates, which differs between CPU models (vector width, exp/log): -5.2795e-05 on
    # AMD EPYC, -5.2828e-05 on Intel Xeon (3e-8 apart). abs=1e-6: 30x that, 2% of the loss
    assert float(metrics["policy_loss"][-1]) == pytest.approx(-5.28283417224884e-05, abs=1e-6)
    assert float(jax.jit(algo.evaluate)(state, jax.random.PRNGKey(2))[0]) == 50.0
    assert float(random_policy_return(task, jax.random.PRNGKey(0), 8)) == 24.875


def test_env_steps_as_gymnax_with_episode_bookkeeping_and_time_limit_apart():
    """Pushing CartPole left always topples it in ~10 steps (termination); a 5-step limit
    instead cuts every episode at 5 steps (truncation), with return 5 (reward 1 per step)."""
    import gymnax

    for limit, expect_truncation in ((500, False), (5, True)):
        env = make_env(Task(source="gymnax", env_name="CartPole-v1", episode_length=limit))
        state = env.reset(jax.random.PRNGKey(0), {})
        step = jax.jit(lambda s: env.step(s, jnp.int32(0), {}))  # noqa: B023 (this iteration's env)
        for t in range(1, 40):  # noqa: B007 (t is the episode length, read after the loop)
            state = step(state)
            if state.done:
                break
        assert float(state.info["truncation"]) == float(expect_truncation)
        assert float(state.info["episode_metrics"]["length"]) == t
        assert float(state.info["episode_metrics"]["sum_reward"]) == t
        assert (t == 5) if expect_truncation else (8 <= t <= 12)
        state = step(state)  # auto-reset: a new episode counts from 1
        assert float(state.info["episode_metrics"]["length"]) == 1.0

    # same transitions as gymnax itself: our key schedule fed to gymnax by hand
    raw, params = gymnax.make("Breakout-MinAtar")
    env = make_env(Task(source="gymnax", env_name="Breakout-MinAtar"))
    key = jax.random.PRNGKey(4)
    ours = env.reset(key, {})
    key, k = jax.random.split(key)
    obs, raw_state = raw.reset(k, params)
    np.testing.assert_array_equal(ours.obs, np.ravel(obs))
    for action in (1, 2, 0, 1):
        ours = env.step(ours, jnp.int32(action), {})
        key, k = jax.random.split(key)
        obs, raw_state, reward, *_ = raw.step(k, raw_state, action, params)
        np.testing.assert_array_equal(ours.obs, np.ravel(obs))
        assert float(ours.reward) == float(reward)


@pytest.mark.fast
def test_unknown_names_list_valid_ones_per_source():
    with pytest.raises(
        ValueError, match=r"not a gymnax environment.*; valid names: CartPole-v1, .*Breakout-MinAtar"
    ):
        Task(source="gymnax", env_name="Pong")
    with pytest.raises(ValueError, match=r"'gym' is unknown \(did you mean 'gymnax'\?\); valid"):
        Task(source="gym", env_name="CartPole-v1")
    with pytest.raises(ValueError, match=r"task.backend = 'spring' does not apply to gymnax tasks"):
        Task(source="gymnax", env_name="CartPole-v1", backend="spring")
    assert CARTPOLE.episode_length == 500 and Task().episode_length == 1000
    assert Task() == Task(backend="spring", episode_length=1000)


@pytest.mark.fast
def test_labels_old_and_new():
    assert CARTPOLE.label == "gymnax:CartPole-v1"
    assert Task(env_name="hopper").label == "hopper/spring"
    assert parse_label("gymnax:Asterix-MinAtar") == {"source": "gymnax", "env_name": "Asterix-MinAtar"}
    for text in ("brax:hopper/spring", "hopper/spring", "hopper"):
        assert parse_label(text) == {"source": "brax", "env_name": "hopper", "backend": "spring"}
    with pytest.raises(ValueError, match="source = 'atari' is unknown"):
        parse_label("atari:Pong")


def test_categorical_policy_and_ppo_clip_drift_give_the_clipped_surrogate():
    """On a discrete action space the policy is categorical, and PPO's drift slot holding
    ppo_clip gives -mean(min(r A, clip(r, 0.8, 1.2) A)), value and gradient, with r computed
    here from a hand-written log-softmax."""
    env = make_env(CARTPOLE)
    policy = make_policy(env.discrete, env.action_size, (16,), "tanh")
    obs = jax.random.normal(jax.random.PRNGKey(0), (256, env.observation_size))
    old = policy.init(jax.random.PRNGKey(1), obs[0])
    leaves, treedef = jax.tree.flatten(old)
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    new = jax.tree.unflatten(treedef, [p + 0.5 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
    actions = policy.distribution(old, obs).sample(seed=jax.random.PRNGKey(3))
    assert actions.shape == (256,) and actions.dtype in (jnp.int32, jnp.int64)
    adv = jax.random.normal(jax.random.PRNGKey(4), (256,))
    drift_fn = rule_slots(TINY, make_rule("ppo_clip", eps=0.2)).drift
    hp = rule_slots(TINY, make_rule("ppo_clip")).hyperparams(None, 0.0)
    old_lp = policy.distribution(old, obs).log_prob(actions)

    def slot_loss(params):
        ratio = jnp.exp(policy.distribution(params, obs).log_prob(actions) - old_lp)
        return -jnp.mean(ratio * adv - drift_fn({}, DriftInputs(ratio, adv), hp))

    def logits_of(params):  # the actor MLP by hand: tanh hidden layer, linear output
        layers = params["params"]["MLP_0"]
        h = jnp.tanh(obs @ layers["Dense_0"]["kernel"] + layers["Dense_0"]["bias"])
        return h @ layers["Dense_1"]["kernel"] + layers["Dense_1"]["bias"]

    def reference(params):
        def log_pi(p):
            z = logits_of(p)
            z = z - jnp.max(z, -1, keepdims=True)
            return jnp.take_along_axis(
                z - jnp.log(jnp.sum(jnp.exp(z), -1, keepdims=True)), actions[:, None], -1
            )[:, 0]

        r = jnp.exp(log_pi(params) - log_pi(old))
        return -jnp.mean(jnp.minimum(r * adv, jnp.clip(r, 0.8, 1.2) * adv))

    np.testing.assert_allclose(slot_loss(new), reference(new), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(jax.grad(slot_loss)(new)), jax.tree.leaves(jax.grad(reference)(new))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    ratio = jnp.exp(policy.distribution(new, obs).log_prob(actions) - old_lp)
    assert 0.1 < float(jnp.mean(jnp.abs(ratio - 1) > 0.2)) < 0.9  # clipping is exercised
    uniform = policy.distribution(jax.tree.map(jnp.zeros_like, old), obs)
    np.testing.assert_allclose(uniform.entropy(), np.log(2.0), rtol=1e-6)


@pytest.mark.parametrize(
    "rule_name, options",
    [
        ("lpo", {"hidden_size": 4}),
        ("hyperparams", {"learn": ["gamma", "ent_coef"]}),
        ("learned_optimizer", {}),
    ],
)
def test_every_rule_family_trains_on_a_discrete_minatar_task(rule_name, options):
    rule = make_rule(rule_name, **options)
    algo = make_ppo(TINY, Task(source="gymnax", env_name="Breakout-MinAtar", episode_length=20), rule)
    meta = rule.init(jax.random.PRNGKey(0))
    state, metrics = jax.jit(algo.train)(meta, jax.random.PRNGKey(1))
    assert (
        algo.init(meta, jax.random.PRNGKey(0))
        .params["actor"]["params"]["MLP_0"]["Dense_0"]["kernel"]
        .shape[0]
        == 400
    )  # the 10 x 10 x 4 grid, flattened
    assert np.all(np.isfinite(metrics["policy_loss"])) and np.all(np.isfinite(metrics["entropy"]))
    assert float(metrics["entropy"][0]) > 0.9 * np.log(3)  # near-uniform categorical at the start
    ret, length = jax.jit(algo.evaluate)(state, jax.random.PRNGKey(2))
    assert 0 < float(length) <= 20


@pytest.mark.fast
def test_eval_task_labels_with_sources_take_the_spec_task(tmp_path):
    from discovery.evaluation import evaluate
    from discovery.evaluation.sources import resolve_source
    from tests.support.fabricate import make_run_dir

    assert evaluate.parse_tasks(
        "gymnax:Asterix-MinAtar,brax:hopper/spring,hopper,inverted_pendulum/positional"
    ) == ["gymnax:Asterix-MinAtar", "hopper/spring", "hopper/spring", "inverted_pendulum/positional"]
    run = make_run_dir(tmp_path)
    spec = (run / "spec.toml").read_text()
    (run / "spec.toml").write_text(
        spec.replace(
            "[ppo]",
            '[[tasks]]\nsource = "gymnax"\nenv_name = "CartPole-v1"\n'
            "randomize = { length = [0.3, 0.8] }\n\n[ppo]",
        )
    )
    source = resolve_source(str(run))
    assert source.train_tasks == ["inverted_pendulum/spring", "gymnax:CartPole-v1~length=0.3..0.8"]
    settings = evaluate.eval_settings(
        source,
        evaluate.parse_tasks("gymnax:CartPole-v1,gymnax:Asterix-MinAtar"),
        ["task.episode_length=40"],
        None,
    )
    (_, cartpole), (_, asterix) = settings
    assert cartpole.label == "gymnax:CartPole-v1~length=0.3..0.8"  # the spec's task, ranges included
    assert cartpole.episode_length == asterix.episode_length == 40
    assert asterix == Task(source="gymnax", env_name="Asterix-MinAtar", episode_length=40)


def test_eval_end_to_end_on_a_gymnax_task(tmp_path):
    import argparse
    import json

    from discovery.evaluation import evaluate
    from discovery.rule_io import save_rule

    rule = make_rule("lpo", hidden_size=8)
    save_rule(
        tmp_path / "lpo", rule, rule.init(jax.random.PRNGKey(0)), train_tasks=["inverted_pendulum/spring"]
    )
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    out = tmp_path / "eval"
    args = parser.parse_args(tiny_eval_argv(tmp_path / "lpo.json", "gymnax:CartPole-v1", out))
    assert args.func(args) == 0
    task = json.loads((out / "results.json").read_text())["tasks"]["gymnax:CartPole-v1"]
    assert task["held_out"] is True and task["task"]["source"] == "gymnax"
    assert 5 < task["random_return"] < 30  # random CartPole episodes last ~20 steps (limit 30)
    assert (out / "curves_gymnax_CartPole-v1.png").is_file()


def _catch_by_hand(ball_x: int, paddle_x: int, actions, rows: int = 8, columns: int = 8):
    """DiscoRL's Catch written out: the ball starts in row 0 and falls a row each step, the paddle
    starts in the bottom row's middle and moves by action - 1 within the board; reaching the
    bottom row ends the episode with +1 if the paddle is under the ball, else -1.
    Returns per step (board [rows, columns] after the step, reward, done)."""
    ball_y, out = 0, []
    for action in actions:
        paddle_x = min(max(paddle_x + action - 1, 0), columns - 1)
        ball_y += 1
        board = np.zeros((rows, columns), np.float32)
        board[ball_y, ball_x] = board[rows - 1, paddle_x] = 1.0
        done = ball_y == rows - 1
        out.append((board, (1.0 if paddle_x == ball_x else -1.0) if done else 0.0, done))
        if done:
            break
    return out


@pytest.mark.fast
@pytest.mark.parametrize("actions", [(2, 2, 2, 0, 1, 1, 1), (0, 0, 0, 0, 0, 0, 0), (1, 2, 0, 2, 2, 2, 2)])
def test_catch_8x8_steps_as_discorls_catch(actions):
    """Catch-8x8 (Disco103's evaluation board) against the game written out by hand: boards,
    rewards and the episode's end after 7 steps; then auto-reset to a new ball in row 0."""
    env = make_env(Task(source="gymnax", env_name="Catch-8x8"))
    state = env.reset(jax.random.PRNGKey(3), {})
    first = np.asarray(state.obs).reshape(8, 8)
    assert first.sum() == 2 and first[7, 4] == 1.0 and first[0].sum() == 1  # paddle mid, ball top
    ball_x = int(np.argmax(first[0]))
    step = jax.jit(lambda s, a: env.step(s, a, {}))
    for board, reward, done in _catch_by_hand(ball_x, 4, actions):
        state = step(state, jnp.int32(actions[0]))
        actions = actions[1:]
        assert float(state.reward) == reward and bool(state.done) == done
        if not done:
            np.testing.assert_array_equal(np.asarray(state.obs).reshape(8, 8), board)
    assert float(state.info["episode_metrics"]["length"]) == 7.0
    restarted = np.asarray(step(state, jnp.int32(1)).obs).reshape(8, 8)
    assert restarted[1].sum() == 1 and restarted[:7].sum() == 1  # a new ball, one row down
