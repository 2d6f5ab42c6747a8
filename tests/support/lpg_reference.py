"""LPG's meta-network and agent update written again in plain numpy (float64), step by step with
Python loops, from the equations in `inner_algos.rules.targets` and `inner_algos.lpg.losses`: the
known answers the LPG tests compare the JAX code against."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def gru_step(p, h, x):
    """One GRU step for one env: h [H], x [D]; gates in the order reset, update, candidate."""
    size = h.shape[0]
    wi, bi, wh, bhn = (np.asarray(p[k], np.float64) for k in ("wi", "bi", "wh", "bhn"))
    gate_x = [x @ wi[:, i * size : (i + 1) * size] + bi[i * size : (i + 1) * size] for i in range(3)]
    gate_h = [h @ wh[:, i * size : (i + 1) * size] for i in range(3)]
    reset = sigmoid(gate_x[0] + gate_h[0])
    update = sigmoid(gate_x[1] + gate_h[1])
    candidate = np.tanh(gate_x[2] + reset * (gate_h[2] + bhn))
    return (1.0 - update) * candidate + update * h


def backward_gru(p, x, done):
    """h [T, N, H] by a loop over envs and, backwards, over steps: the state is zeroed after a step
    whose episode ended, before it reaches the step before."""
    steps, envs, _ = x.shape
    size = np.asarray(p["bhn"]).shape[0]
    out = np.zeros((steps, envs, size))
    for i in range(envs):
        h = np.zeros(size)
        for t in reversed(range(steps)):
            if done[t, i]:
                h = np.zeros(size)
            h = gru_step(p, h, x[t, i])
            out[t, i] = h
    return out


def embed(p, y):
    hidden = np.maximum(y @ np.asarray(p["w1"], np.float64) + np.asarray(p["b1"], np.float64), 0.0)
    return hidden @ np.asarray(p["w2"], np.float64)[:, 0] + float(np.asarray(p["b2"])[0])


def meta_network(p, reward, done, gamma, pi_taken, y, y_next, progress=None, log_lifetime=None):
    """(pi_hat [T, N], y_hat [T, N, n]): the features built one step at a time."""
    steps, envs = reward.shape
    rows = []
    for t in range(steps):
        for i in range(envs):
            feats = [
                reward[t, i],
                done[t, i],
                gamma,
                pi_taken[t, i],
                embed(p["embed"], y[t, i]),
                0.0 if done[t, i] else embed(p["embed"], y_next[t, i]),
            ]
            if progress is not None:
                feats += [progress, log_lifetime]
            rows.append(feats)
    x = np.array(rows).reshape(steps, envs, -1)
    h = np.maximum(backward_gru(p["gru"], x, done), 0.0)
    w, b = np.asarray(p["pi_head"]["w"], np.float64), np.asarray(p["pi_head"]["b"], np.float64)
    pi_hat = h @ w[:, 0] + b[0]
    wy, by = np.asarray(p["y_head"]["w"], np.float64), np.asarray(p["y_head"]["b"], np.float64)
    return pi_hat, softmax(h @ wy + by)


def gae(reward, value, last_value, termination, truncation, gamma, lam):
    """GAE advantages [T, N] by a backward loop per env (terminations do not bootstrap; a time-limit
    cut zeroes the TD error and the trace, as brax's PPO)."""
    steps, envs = reward.shape
    adv = np.zeros((steps, envs))
    for i in range(envs):
        running = 0.0
        for t in reversed(range(steps)):
            next_value = last_value[i] if t == steps - 1 else value[t + 1, i]
            delta = (reward[t, i] + gamma * (1 - termination[t, i]) * next_value - value[t, i]) * (
                1 - truncation[t, i]
            )
            running = delta + gamma * lam * (1 - termination[t, i]) * (1 - truncation[t, i]) * running
            adv[t, i] = running
    return adv
