"""Writes `disco_reference.npz`: DiscoRL's reference numbers (github.com/google-deepmind/disco_rl at
9059a29f, the Haiku code) for the parity tests of our port. Not run by the test suite.

How it was produced (once, on CPU, float32):

    python -m venv /work/scratch/disco/venv
    /work/scratch/disco/venv/bin/pip install dm-haiku rlax distrax chex jax numpy ml_collections \
        immutabledict dm-env jmp absl-py optax
    # (installed: jax 0.10.2, dm-haiku 0.0.17, rlax, distrax 0.1.9, chex 0.1.92, optax 0.2.8)
    PYTHONPATH=<a checkout of disco_rl> /work/scratch/disco/venv/bin/python make_reference_fixture.py

For two cases ("fresh": the meta-state of `init_meta_state`; "warm": a random meta-RNN state and
moving averages part-way through a lifetime), on seeded random agent outputs of a `[T+1, B]` rollout
(policy logits, y, z, categorical q, aux policy; the behaviour policy's and the target network's
outputs), rewards, terminal flags and actions, it records with the published Disco103 weights:
`DiscoUpdateRule.unroll_meta_net`'s outputs and new meta-state (meta-RNN state, both moving
averages, target params after the target coefficient), the per-step `agent_loss` and
`agent_loss_no_meta`, and the gradient of sum(weights * (both losses)) with respect to every agent
output (backprop=False: the targets are data, as when the rule trains an agent).
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from disco_rl import agent as agent_lib
from disco_rl import types
from disco_rl.update_rules import disco

T, B, A = 4, 2, 3
WEIGHTS = "disco_rl/update_rules/weights/disco_103.npz"


def unflatten(flat):
    params = {}
    for name in flat.files:
        module, leaf = name.rsplit("/", 1)
        params.setdefault(module, {})[leaf] = jnp.asarray(flat[name])
    return params


def agent_outputs(rng, num_bins=601, pred=600):
    q = rng.normal(size=(T + 1, B, A, num_bins)) * 0.5
    # A bump near the middle bin, so that values are of Catch's size (bins: the integers -300..300).
    centre = rng.integers(297, 304, size=(T + 1, B, A))
    q[np.arange(T + 1)[:, None, None], np.arange(B)[None, :, None], np.arange(A)[None, None, :], centre] += (
        6.0
    )
    return dict(
        logits=rng.normal(size=(T + 1, B, A)) * 1.5,
        y=rng.normal(size=(T + 1, B, pred)),
        z=rng.normal(size=(T + 1, B, A, pred)),
        q=q,
        aux_pi=rng.normal(size=(T + 1, B, A, A)),
    )


def make_case(seed, warm):
    rng = np.random.default_rng(seed)
    f32 = lambda tree: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)  # noqa: E731
    case = dict(
        agent_out=f32(agent_outputs(rng)),
        behaviour_logits=f32(rng.normal(size=(T + 1, B, A))),
        target_out=f32(agent_outputs(rng)),
        rewards=f32(rng.choice([-1.0, 0.0, 0.0, 1.0, 0.5, 3.0], size=(T, B))),
        is_terminal=jnp.asarray(
            (rng.random((T, B)) < 0.25) | (np.arange(T)[:, None] == 1) * (np.arange(B) == 0)
        ),
        actions=jnp.asarray(rng.integers(0, A, size=(T + 1, B)), jnp.int32),
        loss_weights=f32(rng.random((T, B))),
        params=f32(dict(w=rng.normal(size=(4, 2)), b=rng.normal(size=(2,)))),
        target_params=f32(dict(w=rng.normal(size=(4, 2)), b=rng.normal(size=(2,)))),
    )
    if warm:
        case["rnn_hidden"] = f32(rng.normal(size=(128,)) * 0.5)
        case["rnn_cell"] = f32(rng.normal(size=(128,)))
        case["adv_ema"] = f32(np.array([0.3, 2.0, 0.6]))  # moment1, moment2, decay_product
        case["td_ema"] = f32(np.array([-0.2, 1.5, 0.4]))
    return case


def run_case(rule, meta_params, hyper, case):
    meta_state = rule.init_meta_state(jax.random.PRNGKey(0), case["target_params"])
    if "rnn_hidden" in case:
        lstm_state = meta_state["rnn_state"]["lstm"]["meta_rnn_state"]
        meta_state["rnn_state"]["lstm"]["meta_rnn_state"] = type(lstm_state)(
            hidden=case["rnn_hidden"], cell=case["rnn_cell"]
        )
        for key in ("adv_ema", "td_ema"):
            m1, m2, dp = case[key]
            meta_state[f"{key}_state"] = types.EmaState(moment1=m1, moment2=m2, decay_product=dp)

    def inputs(agent_out):
        return types.UpdateRuleInputs(
            observations=jnp.zeros((T + 1, B)),
            actions=case["actions"],
            rewards=case["rewards"],
            is_terminal=case["is_terminal"],
            behaviour_agent_out=dict(logits=case["behaviour_logits"]),
            agent_out=agent_out,
        )

    unroll = lambda params, state, obs, reset: (case["target_out"], state)  # noqa: E731
    meta_out, new_state = rule.unroll_meta_net(
        meta_params, case["params"], None, meta_state, inputs(case["agent_out"]), hyper, unroll, None
    )

    def losses(agent_out):
        rollout = inputs(agent_out)
        loss, _ = rule.agent_loss(rollout, meta_out, hyper, backprop=False)
        no_meta, _ = rule.agent_loss_no_meta(rollout, meta_out, hyper)
        return jnp.sum(case["loss_weights"] * (loss + no_meta)), (loss, no_meta)

    grads, (loss, no_meta) = jax.grad(losses, has_aux=True)(case["agent_out"])
    lstm_state = new_state["rnn_state"]["lstm"]["meta_rnn_state"]
    out = dict(
        loss_per_step=loss,
        loss_no_meta_per_step=no_meta,
        rnn_hidden_out=lstm_state.hidden,
        rnn_cell_out=lstm_state.cell,
        target_w_out=new_state["target_params"]["w"],
        target_b_out=new_state["target_params"]["b"],
    )
    for key in ("adv_ema", "td_ema"):
        ema = new_state[f"{key}_state"]
        out[f"{key}_out"] = jnp.stack([ema.moment1, ema.moment2, ema.decay_product])
    for key in (
        "pi",
        "y",
        "z",
        "meta_input_emb",
        "q_target",
        "adv",
        "normalized_adv",
        "qv_adv",
        "normalized_qv_adv",
        "q_value",
        "q_td",
        "normalized_q_td",
    ):
        out[f"meta_{key}"] = meta_out[key]
    for key, grad in grads.items():
        out[f"grad_{key}"] = grad
    return out


def flatten_case(name, case, out):
    flat = {}
    for key, value in case.items():
        if isinstance(value, dict):
            for sub, x in value.items():
                flat[f"{name}/{key}/{sub}"] = np.asarray(x)
        else:
            flat[f"{name}/{key}"] = np.asarray(value)
    for key, value in out.items():
        flat[f"{name}/out/{key}"] = np.asarray(value)
    return flat


def main(path="disco_reference.npz"):
    settings = agent_lib.get_settings_disco()
    rule = disco.DiscoUpdateRule(**settings.update_rule)
    hyper = settings.hyper_params.to_dict()
    meta_params = unflatten(np.load(WEIGHTS))
    flat = {}
    for name, seed, warm in (("fresh", 0, False), ("warm", 1, True)):
        case = make_case(seed, warm)
        flat.update(flatten_case(name, case, run_case(rule, meta_params, hyper, case)))
    np.savez_compressed(path, **flat)
    print(f"wrote {len(flat)} arrays to {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
