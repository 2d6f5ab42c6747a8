"""One agent + side-critic update (`inner_algos.lpg.update.learn`) against a hand-written numpy
version on a tiny tabular case: the gradients written out by hand (softmax and KL derivatives per
visited state), the global-norm clip and the SGD step; for the learned rule and for A2C."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inner_algos.envs import Task
from inner_algos.lpg import A2CTargets, LearnedTargets, LPGConfig, Trajectory
from inner_algos.lpg.update import init_state, learn, make_parts
from tests.support import lpg_reference

pytestmark = pytest.mark.fast

T, N, Y = 3, 2, 3
TASK = Task(source="gridworld", env_name="sparse")
S, A = 4 * 169, 9
STATES = np.array([[5, 7], [7, 9], [5, 11]])
LAST = np.array([13, 5])
ACTIONS = np.array([[0, 4], [8, 4], [2, 4]])
REWARD = np.array([[0.0, 1.0], [0.0, 0.0], [-1.0, 0.0]])
TERMINATION = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
TRUNCATION = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])


def _case(rule, max_grad_norm):
    config = LPGConfig(
        num_envs=N,
        rollout_length=T,
        num_updates=8,
        y_size=Y,
        learning_rate=0.7,
        critic_learning_rate=0.3,
        max_grad_norm=max_grad_norm,
        gamma=0.9,
        gae_lambda=0.8,
    )
    parts = make_parts(config, TASK, rule)
    state = init_state(parts, {}, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    tables = {
        "policy": rng.normal(size=(S, A)),
        "y": rng.normal(size=(S, Y)),
        "value": rng.normal(size=(S, 1)),
    }
    params = {
        "agent": {"params": {"policy": {"kernel": tables["policy"]}, "y": {"kernel": tables["y"]}}},
        "critic": {"params": {"Dense_0": {"kernel": tables["value"]}}},
    }
    state = state.replace(params=params, opt_state={k: parts.tx.init(v) for k, v in params.items()})
    done = np.maximum(TERMINATION, TRUNCATION)
    traj = Trajectory(
        obs=jax.nn.one_hot(STATES, S, dtype=jnp.float64),
        action=jnp.asarray(ACTIONS),
        reward=jnp.asarray(REWARD),
        done=jnp.asarray(done),
        termination=jnp.asarray(TERMINATION),
        truncation=jnp.asarray(TRUNCATION),
        episode_return=jnp.zeros((T, N)),
        episode_length=jnp.zeros((T, N)),
        episode_done=jnp.asarray(done),
    )
    return config, parts, state, traj, tables


def _clip(grads, max_norm):
    norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    return [g * (1.0 if norm < max_norm else max_norm / norm) for g in grads]


def _numpy_update(config, rule, meta_params, tables):
    """The update by hand: returns (new policy, y, value tables, policy_loss)."""
    log_pi = np.log(lpg_reference.softmax(tables["policy"]))
    y_all = lpg_reference.softmax(tables["y"])
    value = tables["value"][:, 0]
    adv = lpg_reference.gae(
        REWARD, value[STATES], value[LAST], TERMINATION, TRUNCATION, config.gamma, config.gae_lambda
    )
    done = np.maximum(TERMINATION, TRUNCATION)
    next_states = np.concatenate([STATES[1:], LAST[None]])
    pi_taken = np.exp(np.take_along_axis(log_pi[STATES], ACTIONS[..., None], -1)[..., 0])
    if rule.name == "lpg":
        pi_hat, y_hat = lpg_reference.meta_network(
            meta_params, REWARD, done, config.gamma, pi_taken, y_all[STATES], y_all[next_states]
        )
        ent_coef = 0.0
    else:
        pi_hat, y_hat, ent_coef = adv, y_all[STATES], rule.ent_coef
    g_pi, g_y, g_v = np.zeros((S, A)), np.zeros((S, Y)), np.zeros((S, 1))
    scale = 1.0 / (T * N)
    for t in range(T):
        for i in range(N):
            s, a = STATES[t, i], ACTIONS[t, i]
            p = np.exp(log_pi[s])
            entropy = -np.sum(p * log_pi[s])
            g_pi[s] += -scale * pi_hat[t, i] * (np.eye(A)[a] - p)  # -pi_hat grad log pi(a|s)
            g_pi[s] += ent_coef * scale * p * (log_pi[s] + entropy)  # -c grad H
            g_y[s] += config.y_coef * scale * (y_all[s] - y_hat[t, i])  # grad KL(y_hat || y)
            g_v[s, 0] += scale * (value[s] - (adv[t, i] + value[s]))  # 0.5 (V - target)^2
    g_pi, g_y = _clip([g_pi, g_y], config.max_grad_norm)
    (g_v,) = _clip([g_v], config.max_grad_norm)
    policy_loss = -np.mean(np.log(pi_taken) * pi_hat)
    return (
        tables["policy"] - config.learning_rate * g_pi,
        tables["y"] - config.learning_rate * g_y,
        tables["value"] - config.critic_learning_rate * g_v,
        policy_loss,
    )


@pytest.mark.parametrize("max_grad_norm", [1e6, 0.05], ids=["unclipped", "clipped"])
@pytest.mark.parametrize("rule", [LearnedTargets(y_size=Y, hidden=5, init_scale=1.0), A2CTargets(0.1)])
def test_learn_matches_a_hand_written_update(rule, max_grad_norm):
    with jax.enable_x64(True):
        config, parts, state, traj, tables = _case(rule, max_grad_norm)
        meta_params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), rule.init(jax.random.PRNGKey(1)))
        last_obs = jax.nn.one_hot(LAST, S, dtype=jnp.float64)
        params, _, stats = jax.jit(lambda m, s: learn(parts, m, s, traj, last_obs))(meta_params, state)
    want_pi, want_y, want_v, policy_loss = _numpy_update(config, rule, meta_params, tables)
    np.testing.assert_allclose(params["agent"]["params"]["policy"]["kernel"], want_pi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params["agent"]["params"]["y"]["kernel"], want_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        params["critic"]["params"]["Dense_0"]["kernel"], want_v, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(float(stats["policy_loss"]), policy_loss, rtol=1e-10)
    moved = np.abs(want_pi - tables["policy"]).max(axis=1) > 0
    assert moved.sum() == len(np.unique(STATES))  # only the visited states' rows change


@pytest.mark.parametrize("normalize", [False, True])
def test_the_meta_objectives_policy_gradient_loss_matches_a_hand_computation(normalize):
    from inner_algos.lpg.losses import policy_gradient_loss

    _, parts, state, traj, tables = _case(A2CTargets(0.1), 1e6)
    adv = np.array([[2.0, -1.0], [0.5, 4.0], [-3.0, 1.5]])
    log_pi = np.log(lpg_reference.softmax(tables["policy"]))
    log_pi_taken = np.take_along_axis(log_pi[STATES], ACTIONS[..., None], -1)[..., 0]
    a = (adv - adv.mean()) / (adv.std() + 1e-8) if normalize else adv
    expected = -np.mean(log_pi_taken * a)
    loss = policy_gradient_loss(
        state.params["agent"], traj, jnp.asarray(adv), agent=parts.agent, normalize=normalize
    )
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
