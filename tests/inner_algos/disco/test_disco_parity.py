"""DiscoRL's rule against the published Haiku harness's numbers (`data/disco_reference.npz`,
produced once by `data/make_reference_fixture.py` in a scratch environment; its docstring says
how): with Disco103's weights, on two seeded rollouts, the meta-network's outputs and new state,
the value outputs and moving averages, the target network's update, the per-step loss and its
gradient with respect to every agent output."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.zoo.disco import load_disco103
from inner_algos.rules.disco import AgentOutputs, DiscoInputs, DiscoMetaState, LSTMState
from inner_algos.rules.disco.values import EmaState

FIXTURE = Path(__file__).parent / "data" / "disco_reference.npz"
CASES = ("fresh", "warm")
RTOL, ATOL = 1e-5, 1e-5  # float32; see _close for the scale the tolerance is taken at


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as data:
        return dict(data)


@pytest.fixture(scope="module")
def disco103():
    return load_disco103()


def _case(ref: dict, name: str) -> dict:
    prefix = f"{name}/"
    return {k[len(prefix) :]: v for k, v in ref.items() if k.startswith(prefix)}


def _outputs(case: dict, who: str) -> AgentOutputs:
    return AgentOutputs(**{f: jnp.asarray(case[f"{who}/{f}"]) for f in AgentOutputs._fields})


def _meta_state(rule, case: dict) -> DiscoMetaState:
    state = rule.initial_meta_state()
    if "rnn_hidden" not in case:
        return state
    emas = {k: EmaState(*map(jnp.asarray, case[k])) for k in ("adv_ema", "td_ema")}
    lstm = LSTMState(jnp.asarray(case["rnn_hidden"]), jnp.asarray(case["rnn_cell"]))
    return DiscoMetaState(lstm=lstm, **emas)


def _inputs(rule, case: dict, agent_out: AgentOutputs | None = None) -> DiscoInputs:
    return DiscoInputs(
        agent_out=_outputs(case, "agent_out") if agent_out is None else agent_out,
        target_out=_outputs(case, "target_out"),
        behaviour_logits=jnp.asarray(case["behaviour_logits"]),
        actions=jnp.asarray(case["actions"]),
        rewards=jnp.asarray(case["rewards"]),
        is_terminal=jnp.asarray(case["is_terminal"]),
        meta_state=_meta_state(rule, case),
    )


def run_rule(rule, meta_params, case: dict) -> dict:
    """Our numbers under the fixture's names."""
    inputs = _inputs(rule, case)
    targets = jax.jit(rule.apply)(meta_params, inputs)

    def weighted_loss(agent_out):
        loss, _ = rule.agent_loss(agent_out, targets, inputs.actions, inputs.is_terminal)
        return jnp.sum(case["loss_weights"] * loss), loss

    grads, loss = jax.jit(jax.grad(weighted_loss, has_aux=True))(inputs.agent_out)
    params = {k: jnp.asarray(case[f"params/{k}"]) for k in ("w", "b")}
    old_target = {k: jnp.asarray(case[f"target_params/{k}"]) for k in ("w", "b")}
    new_target = rule.update_target_params(old_target, params)
    meta, values, state = targets
    out = {f"meta_{k}": getattr(meta, k) for k in meta._fields}
    out.update({f"meta_{k}": getattr(values, k) for k in ("q_target", "adv", "normalized_adv", "qv_adv")})
    out.update(
        {f"meta_{k}": getattr(values, k) for k in ("normalized_qv_adv", "q_value", "q_td", "normalized_q_td")}
    )
    out.update({f"grad_{k}": getattr(grads, k) for k in AgentOutputs._fields})
    out.update(rnn_hidden_out=state.lstm.hidden, rnn_cell_out=state.lstm.cell, loss=loss)
    out.update(target_w_out=new_target["w"], target_b_out=new_target["b"])
    for k in ("adv_ema", "td_ema"):
        ema = getattr(state, k)
        out[f"{k}_out"] = jnp.stack([ema.moment1, ema.moment2, ema.decay_product])
    return out


def _expected(case: dict) -> dict:
    want = {k[len("out/") :]: v for k, v in case.items() if k.startswith("out/")}
    want["loss"] = want.pop("loss_per_step") + want.pop("loss_no_meta_per_step")
    return want


def _close(got: dict, want: dict, key: str) -> None:
    """|ours - reference| <= ATOL * scale + RTOL |reference|, scale = max(1, max |reference|): the
    absolute part is float32 rounding at the array's own magnitude (Q-values reach tens)."""
    ref = np.asarray(want[key])
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(np.asarray(got[key]), ref, rtol=RTOL, atol=ATOL * scale, err_msg=key)


@pytest.mark.parametrize("name", CASES)
def test_matches_reference(reference, disco103, name):
    rule, meta_params = disco103
    case = _case(reference, name)
    got, want = run_rule(rule, meta_params, case), _expected(case)
    assert set(want) <= set(got), sorted(set(want) - set(got))
    for key in sorted(want):
        _close(got, want, key)


def test_dropping_an_input_transform_breaks_parity(reference, disco103):
    """The comparison is sharp enough to see one input transform missing: without sign_log on the
    rewards (shapes unchanged), pi, y and z leave the tolerance."""
    rule, meta_params = disco103
    base = tuple(
        (source, tuple(t for t in names if not (source == "reward" and t == "sign_log")))
        for source, names in rule.net.base_inputs
    )
    broken = dataclasses.replace(rule, net=dataclasses.replace(rule.net, base_inputs=base))
    case = _case(reference, "warm")
    got, want = run_rule(broken, meta_params, case), _expected(case)
    for key in ("meta_pi", "meta_y", "meta_z"):
        with pytest.raises(AssertionError):
            _close(got, want, key)
