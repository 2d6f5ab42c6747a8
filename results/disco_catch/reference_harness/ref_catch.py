# Script version of disco_rl/colabs/eval.ipynb (commit 9059a29f).
# Cells transcribed: imports (cell 1), weight loading (cell 2), "Instantiate a
# simple MLP agent" (3), "Helper functions" (4), "A simple Replay buffer" (5),
# "Training loop" (6), "Process logs" (7, avg_returns only).
# All deviations from the colab are listed in ADAPTATIONS.md.
import argparse
import collections
import json
import os
import sys
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import rlax

# ADAPTATION: jax 0.10.2 hides jax.device_put_replicated / device_put_sharded
# behind a deprecation error (the colab and disco_rl.utils.shard_across_devices
# use them). Their implementations are still in jax._src.api; re-expose them
# unchanged so the colab / reference code runs as written.
from jax._src import api as _jax_api
jax.device_put_replicated = _jax_api.device_put_replicated
jax.device_put_sharded = _jax_api.device_put_sharded


# ADAPTATION: with jax 0.10.2 + chex 0.1.92 on Python 3.11,
# isinstance(tracer, chex.Array) is False (chex.Array is a typing.Union and
# Union.__instancecheck__ uses issubclass(type(x)), which jax tracers no longer
# satisfy). disco_rl/networks/meta_nets.py relies on it in
# `assert isinstance(logits, chex.Array)` (AssertionError under pmap) and in
# `_multiplicative_interaction` (`if isinstance(y, chex.Array) and y.shape`,
# which would otherwise silently skip a layer). Restore the intended semantics.
class _ChexArrayMeta(type):

  def __instancecheck__(cls, x):
    return isinstance(x, (jax.Array, np.ndarray, np.bool_, np.number))


class _ChexArray(metaclass=_ChexArrayMeta):
  pass


chex.Array = _ChexArray

# Types & utils
from disco_rl import types
from disco_rl import utils

# Environments
from disco_rl.environments import base as base_env
from disco_rl.environments import jittable_envs

# Learning
from disco_rl import agent as agent_lib

REF_ROOT = '/work/shared/reference/disco_rl'
WEIGHTS = os.path.join(REF_ROOT, 'disco_rl/update_rules/weights/disco_103.npz')
RESULTS_DIR = '/work/scratch/disco/results'

parser = argparse.ArgumentParser()
parser.add_argument('--seed', type=int, default=0)
parser.add_argument('--num-steps', type=int, default=1000)
parser.add_argument('--update-rule', default='disco',
                    choices=['disco', 'actor_critic'])
parser.add_argument('--ac-settings', default='default',
                    choices=['default', 'colab'],
                    help='actor_critic only: "default" = '
                    'get_settings_actor_critic() untouched; "colab" = same '
                    'net/lr overrides as the colab applies for disco.')
parser.add_argument('--out', default=None)
args = parser.parse_args()

axis_name = 'i'  # for parallelisation
LOADAVG_START = os.getloadavg()


# ---- Cell 2: Disco103 weights ------------------------------------------------
def unflatten_params(flat_params: chex.ArrayTree) -> chex.ArrayTree:
  params = {}
  for key_wb in flat_params:
    key = '/'.join(key_wb.split('/')[:-1])
    params[key] = {
        'b': flat_params[f'{key}/b'],
        'w': flat_params[f'{key}/w'],
    }
  return params


with open(WEIGHTS, 'rb') as file:
  disco_103_params = unflatten_params(np.load(file))

print(f'Loaded {len(disco_103_params) * 2} parameter tensors for Disco103.')


# ---- Cell 3: Instantiate a simple MLP agent ----------------------------------
def get_env(batch_size: int) -> base_env.Environment:
  return jittable_envs.CatchJittableEnvironment(
      batch_size=batch_size, env_settings=jittable_envs.get_config_catch()
  )


# Create a dummy environment.
env = get_env(batch_size=1)

# Create settings for an agent.
if args.update_rule == 'disco':
  agent_settings = agent_lib.get_settings_disco()
  apply_colab_overrides = True
else:
  agent_settings = agent_lib.get_settings_actor_critic()
  apply_colab_overrides = args.ac_settings == 'colab'
if apply_colab_overrides:
  agent_settings.net_settings.name = 'mlp'
  agent_settings.net_settings.net_args = dict(
      dense=(512, 512),
      model_arch_name='lstm',
      head_w_init_std=1e-2,
      model_kwargs=dict(
          head_mlp_hiddens=(128,),
          lstm_size=128,
      ),
  )
  agent_settings.learning_rate = 1e-2

# Create the agent.
agent = agent_lib.Agent(
    agent_settings=agent_settings,
    single_observation_spec=env.single_observation_spec(),
    single_action_spec=env.single_action_spec(),
    batch_axis_name=axis_name,
)

# Ensure that the agent's update rule's parameters have the same specs.
random_update_rule_params, _ = agent.update_rule.init_params(
    jax.random.PRNGKey(0)
)
if agent_settings.update_rule_name == 'disco':
  chex.assert_trees_all_equal_shapes_and_dtypes(
      random_update_rule_params, disco_103_params
  )
  print('Update rule parameters have the same specs.')
else:
  print('Not using a discovered rule, skipping check.')


# ---- Cell 4: Helper functions ------------------------------------------------
def unroll_jittable_actor(
    params,
    actor_state,
    ts,
    env_state,
    rng,
    env,
    rollout_len,
    actor_step_fn,
    devices,
):
  """Unrolls the policy for a jittable environment."""
  del actor_step_fn, devices

  def _single_step(carry, step_rng):
    env_state, ts, actor_state = carry
    actor_timestep, actor_state = agent.actor_step(
        params, step_rng, ts, actor_state
    )
    env_state, ts = env.step(env_state, actor_timestep.actions)
    return (env_state, ts, actor_state), actor_timestep

  (env_state, ts, actor_state), actor_rollout = jax.lax.scan(
      _single_step,
      (env_state, ts, actor_state),
      jax.random.split(rng, rollout_len),
  )

  actor_rollout = types.ActorRollout.from_timestep(actor_rollout)
  return actor_rollout, actor_state, ts, env_state


def accumulate_rewards(acc_rewards, x):
  rewards, discounts = x

  def _step_fn(acc_rewards, x):
    rewards, discounts = x
    acc_rewards += rewards
    return acc_rewards * discounts, acc_rewards

  return jax.lax.scan(_step_fn, acc_rewards, (rewards, discounts))


# ---- Cell 5: A simple Replay buffer ------------------------------------------
class SimpleReplayBuffer:
  """A simple FIFO replay buffer for JAX arrays."""

  def __init__(self, capacity: int, seed: int):
    """Initializes the buffer."""
    self.buffer = collections.deque(maxlen=capacity)
    self.capacity = capacity
    self.np_rng = np.random.default_rng(seed)

  def add(self, rollout: types.ActorRollout) -> None:
    """Appends a batch of trajectories to the buffer."""
    rollout = jax.device_get(rollout)
    split_tree = rlax.tree_split_leaves(rollout, axis=2)  # across batch dim
    self.buffer.extend(split_tree)

  def sample(self, batch_size: int) -> types.ActorRollout | None:
    """Samples a batch of trajectories from the buffer."""
    buffer_size = len(self.buffer)
    if buffer_size == 0:
      print("Warning: Trying to sample from an empty buffer.")
      return None

    indices = self.np_rng.integers(buffer_size, size=batch_size)
    batched_samples = utils.tree_stack(
        [self.buffer[i] for i in indices], axis=2
    )
    return batched_samples

  def __len__(self) -> int:
    """Returns the current number of transitions in the buffer."""
    return len(self.buffer)


# ---- Cell 6: Training loop ---------------------------------------------------
num_steps = args.num_steps
batch_size = 64
rollout_len = 29
rng_key = jax.random.PRNGKey(args.seed)

replay_ratio = 32
buffer = SimpleReplayBuffer(capacity=1024, seed=17 + args.seed)
min_buffer_size = batch_size

num_envs = batch_size // replay_ratio
devices = tuple(jax.devices()[:num_envs])
print('devices:', devices, 'num_envs:', num_envs, flush=True)
env = get_env(num_envs)

# Init states.
env_state, ts = env.reset(rng_key)
acc_rewards = jnp.zeros((num_envs,))
learner_state = agent.initial_learner_state(rng_key)
actor_state = agent.initial_actor_state(rng_key)
if agent_settings.update_rule_name == 'disco':
  update_rule_params = disco_103_params
else:
  # ActorCritic ignores its meta params ({'dummy': 0.}); pass its own.
  update_rule_params = random_update_rule_params

# Parallelise training across all available devices.
actor_step_fn = jax.pmap(agent.actor_step, axis_name, devices=devices)
learner_step_fn = jax.pmap(
    agent.learner_step,
    axis_name=axis_name,
    devices=devices,
    static_broadcasted_argnums=(5,),
)
jitted_unroll_actor = jax.pmap(
    unroll_jittable_actor,
    axis_name=axis_name,
    devices=devices,
    static_broadcasted_argnums=(5, 6, 7, 8),
)
jitted_accumulate_rewards = jax.pmap(
    accumulate_rewards,
    axis_name=axis_name,
    devices=devices,
)

# Replicate onto the devices.
learner_state = jax.device_put_replicated(learner_state, devices)
actor_state = jax.device_put_replicated(actor_state, devices)
update_rule_params = jax.device_put_replicated(update_rule_params, devices)

is_jittable_actor = isinstance(
    env, jittable_envs.batched_jittable_env.BatchedJittableEnvironment
)
assert is_jittable_actor

unroll_actor = jitted_unroll_actor
acc_rewards_fn = jitted_accumulate_rewards
acc_rewards = jnp.zeros((num_envs,))
(env_state, ts, acc_rewards) = utils.shard_across_devices(
    (env_state, ts, acc_rewards), devices
)

def _scalar_metrics():
  out = {}
  for k in (all_metrics[0].keys() if all_metrics else []):
    if np.size(all_metrics[0][k]) == len(devices):
      out[k] = [float(np.mean(m[k])) for m in all_metrics]
  return out


def _save_partial(n):
  # Progress snapshot (not part of the colab): avg_returns so far, same formula.
  r, d = utils.gather_from_devices((all_returns, all_discounts))
  r, d = np.array(r), np.array(d)
  ar = (r * (1 - d)).sum(axis=(1, 2)) / (1 - d).sum(axis=(1, 2))
  pf = os.path.join(RESULTS_DIR, f'ref_{args.update_rule}_seed{args.seed}'
                    f'.partial.json')
  with open(pf, 'w') as f:
    json.dump(dict(steps_done=n, steps=[int(x) for x in all_steps],
                   avg_returns=[float(x) for x in ar],
                   step_times_s=[float(t) for t in step_times],
                   elapsed_s=time.time() - t_start,
                   metrics=_scalar_metrics(),
                   loadavg=os.getloadavg()), f)


# Buffers.
all_metrics = []
all_rewards = []
all_discounts = []
all_steps = []
all_returns = []
total_steps = 0
step_times = []
t_start = time.time()

# Run the loop.
for step in range(num_steps):
  t0 = time.time()
  rng_key, rng_actor, rng_learner = jax.random.split(rng_key, 3)

  if is_jittable_actor:
    rng_actor = jax.random.split(rng_actor, len(devices))

  # Generate new trajectories and add them to the buffer.
  actor_rollout, actor_state, ts, env_state = unroll_actor(
      learner_state.params,
      actor_state,
      ts,
      env_state,
      rng_actor,
      env,
      rollout_len,
      actor_step_fn,
      devices,
  )
  buffer.add(actor_rollout)

  # Accumulate statistics.
  total_steps += np.prod(actor_rollout.rewards.shape)
  acc_rewards, returns = acc_rewards_fn(
      acc_rewards,
      (actor_rollout.rewards, actor_rollout.discounts),
  )
  all_steps.append(total_steps)
  all_rewards.append(jax.device_get(actor_rollout.rewards))
  all_discounts.append(jax.device_get(actor_rollout.discounts))
  all_returns.append(jax.device_get(returns))

  # Update agent's parameters on the samples from the buffer.
  rng_learner = jax.random.split(rng_learner, len(devices))
  if len(buffer) >= min_buffer_size:
    learner_rollout = buffer.sample(batch_size)
    learner_state, _, metrics = learner_step_fn(
        rng_learner,
        learner_rollout,
        learner_state,
        actor_state,
        update_rule_params,
        False,  # is_meta_training
    )
    # ADAPTATION: the colab keeps the whole metrics dict, including
    # metrics['meta_out'] (full [T,B,...] update-rule targets, ~40 MB/step);
    # that exhausted this machine's 24 GB RAM at ~step 420. Keep only the
    # scalar (per-device) metrics; avg_returns does not use them.
    all_metrics.append(jax.device_get(
        {k: v for k, v in metrics.items() if k != 'meta_out'}))
  step_times.append(time.time() - t0)
  if (step + 1) % 100 == 0 and step + 1 < num_steps:
    try:
      _save_partial(step + 1)
    except Exception as e:  # never let the progress snapshot kill the run
      print('partial save failed:', repr(e), flush=True)
  if step < 3 or step % 50 == 0 or step == num_steps - 1:
    print(f'step {step} env_steps {total_steps} dt {step_times[-1]:.3f}s '
          f'elapsed {time.time() - t_start:.1f}s', flush=True)

total_s = time.time() - t_start

# ---- Cell 7: Process logs (avg_returns part) --------------------------------
all_rewards, all_discounts, all_returns = utils.gather_from_devices(
    (all_rewards, all_discounts, all_returns))
all_returns = np.array(all_returns)
all_discounts = np.array(all_discounts)
all_steps = np.array(all_steps)
total_returns = (all_returns * (1 - all_discounts)).sum(axis=(1, 2))
total_episodes = (1 - all_discounts).sum(axis=(1, 2))
avg_returns = total_returns / total_episodes

# First learner step happens at the first colab step where the buffer holds
# >= 64 trajectories (2 per step -> index 31): that step includes its compile.
first_learner_step = next(
    (i for i in range(num_steps) if 2 * (i + 1) >= min_buffer_size), None)
steady = [t for i, t in enumerate(step_times)
          if first_learner_step is not None and i > first_learner_step + 1]
out = dict(
    rule=args.update_rule,
    seed=args.seed,
    num_steps=num_steps,
    steps=[int(s) for s in all_steps],
    avg_returns=[float(x) for x in avg_returns],
    episodes_per_step=[float(x) for x in total_episodes],
    compile_s=float(step_times[0]),
    first_learner_step_index=first_learner_step,
    first_learner_step_s=(float(step_times[first_learner_step])
                          if first_learner_step is not None
                          and first_learner_step < num_steps else None),
    median_step_s_after_compile=(float(np.median(steady)) if steady else None),
    step_times_s=[float(t) for t in step_times],
    metrics=_scalar_metrics(),  # from colab step first_learner_step_index on
    total_s=float(total_s),
    loadavg_start=LOADAVG_START,
    loadavg_end=os.getloadavg(),
    versions=dict(jax=jax.__version__, numpy=np.__version__,
                  python=sys.version.split()[0]),
    xla_flags=os.environ.get('XLA_FLAGS', ''),
    settings=dict(
        agent_settings=agent_settings.to_dict(),
        env='CatchJittableEnvironment',
        env_config=jittable_envs.get_config_catch().to_dict(),
        batch_size=batch_size, rollout_len=rollout_len,
        replay_ratio=replay_ratio, num_envs=num_envs,
        buffer_capacity=1024, buffer_seed=17 + args.seed,
        min_buffer_size=min_buffer_size, rng='PRNGKey(%d)' % args.seed,
        devices=[str(d) for d in devices],
        ac_settings=(args.ac_settings
                     if args.update_rule == 'actor_critic' else None),
    ),
)
os.makedirs(RESULTS_DIR, exist_ok=True)
suffix = ''
if args.update_rule == 'actor_critic' and args.ac_settings == 'colab':
  suffix = '_colabnet'
fname = args.out or os.path.join(
    RESULTS_DIR, f'ref_{args.update_rule}{suffix}_seed{args.seed}.json')
with open(fname, 'w') as f:
  json.dump(out, f, default=str)
print(f'wrote {fname}; compile(first step) {step_times[0]:.1f}s, '
      f'total {total_s:.1f}s, last-100 mean avg_return '
      f'{np.nanmean(avg_returns[-100:]):.3f}', flush=True)
