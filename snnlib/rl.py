"""Reinforcement learning with recurrent cores: POMDP environments and a recurrent PPO actor-critic.

Environments. `make_env(task)` builds a gymnasium environment whose observation keeps only some
coordinates (the pomdp-baselines convention used by Qin et al. 2025: F = full, P = positions
only, V = velocities only), each coordinate divided by a fixed typical magnitude
(`OBSERVATION_SCALE`, the same for every core: CartPole's position and angle by their termination
bounds 2.4 and 0.21 rad, its speeds by 2; Pendulum's angular speed by its limit 8):

    CartPole-F  x, x_dot, theta, theta_dot    CartPole-P  x, theta    CartPole-V  x_dot, theta_dot
    Pendulum-F  cos, sin, theta_dot           Pendulum-P  cos, sin    Pendulum-V  theta_dot
    (Pendulum's torque is discretised to `PENDULUM_TORQUES`, so every task has discrete actions.)
    CueRecall   a T-maze in time (`CueRecall`, 10 steps): step 0 shows a cue (left or right, one-hot),
                the corridor steps show nothing, the last step shows "go"; the action taken at
                "go" must name the cue (reward +1, else -1; the other actions earn 0). A
                memoryless policy sees the same "go" whatever the cue: expected return 0, and
                under greedy evaluation +1 or -1 per episode by the cue's luck; memory gets 1.
    RepeatFirst popgym's RepeatFirstEasy: a card (one of 4, one-hot) is shown each step and the
                action must name the first card of the episode (51 steps, reward +-1/51 per step);
                a memoryless policy can only guess (expected return -0.5), a perfect memory gets 1.

Agent. `ActorCritic` = observation embedding -> recurrent core -> policy and value heads:

    e[t]  = relu(W_e obs[t] + b_e)                                  [T, B, embed]
    y[t]  = core(e)[t]          GRU hidden state, or spikes / spike rates of a spiking core
    pi(.|history) = softmax(W_2 tanh(W_1 y[t] + b_1) + b_2),  V(history) = the same with one output

Time-first throughout: observation sequences are `[T, B, obs]`, one step per environment step.
The core is the only memory; the actor and critic share it (the authors train a separate
recurrent actor and critic with SAC; one shared core halves the CPU cost and makes "synaptic
operations per decision" one number; PPO replaces SAC-Discrete because on-policy updates from
whole episodes need no replay buffer of hidden states and are stable for every core at a small
budget).

Training (PPO on whole episodes, `train_ppo`). Each iteration:

    1. run `episodes_per_batch` episodes in parallel from a reset core state, sampling actions,
       state carried from step to step (TAP) -- episodes are never cut, so every sequence starts
       at the episode's first step, exactly as it will be acted;
    2. advantages by GAE over each episode (mask m[t] = 1 while the episode runs):
           delta[t] = r[t] + gamma V[t+1] m[t+1] - V[t],   A[t] = delta[t] + gamma lambda m[t+1] A[t+1]
           R[t] = A[t] + V[t]      (the end of an episode, also a time-limit end, counts as terminal)
       with r = reward_scale * reward (0.1: keeps the value loss from swamping the shared core)
    3. `ppo_epochs` passes over the episodes in `minibatches` groups: reset the core, run it over
       the padded episodes [T, b, obs] and minimise, over valid steps (mean over m[t] = 1),
           L = -min(rho A, clip(rho, 1 - eps, 1 + eps) A) + c_v (V - R)^2 / 2 - c_e H(pi),
           rho = pi(a|h) / pi_old(a|h),  A normalised to zero mean and unit variance per batch,
       with the gradient norm clipped to `max_grad_norm` (Adam). With `anneal_lr` the learning rate
       falls linearly from `lr` to 0 over `total_steps` (set before each iteration from the steps
       done), as in common PPO practice: without it the policy of a small batch (8 episodes) keeps
       swinging from update to update, so the final parameters are a random draw of an oscillating
       run (seen on CueRecall: a GRU at p(correct) 0.94 fell to 0.47 in one update and came back).

Randomness comes from `seed` only: the model initialisation (torch seeded by `seed_everything`),
a numpy Generator for the environment seeds, and a torch.Generator for action sampling and
minibatch order. With a `checkpoint` path the model, optimiser, history and both generators are
written atomically after every iteration, and `train_ppo(resume=True)` continues from there with
the same numbers as an uninterrupted run.

Reuse. The PPO iterations (`train_loop`), episode collection and operation counting take any
model and any environment with the gymnasium reset/step interface, so `snnlib.marl` trains a team
of agents with them: its model acts for several agents at once (actions `[B, agents]`) and returns
one team value per environment, and its loss is passed to `train_loop` as `loss_fn`.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from spikingjelly.activation_based import functional
from torch import nn
from tqdm.auto import tqdm

from snnlib.io import atomic_write
from snnlib.methods.gated_recurrent_neuron import make_core
from snnlib.metrics import SynapticOperationCounter, energy_proxy
from snnlib.training import one_torch_thread, seed_everything

__all__ = ["TASKS", "CueRecall", "OBSERVATION_SCALE", "PENDULUM_TORQUES", "ActorCritic", "PPOConfig", "Episodes", "make_env",
           "collect_episodes", "gae", "masked_mean", "policy_loss_terms", "train_loop", "train_ppo", "evaluate_policy",
           "evaluate_envs",
           "count_operations", "operations_per_decision", "one_torch_thread", "run_job"]

PENDULUM_TORQUES = (-2.0, -1.0, 0.0, 1.0, 2.0)
"""Torques of the discretised Pendulum (its action space is [-2, 2])."""

OBSERVATION_SCALE = {"CartPole-v1": (2.4, 2.0, 0.21, 2.0), "Pendulum-v1": (1.0, 1.0, 8.0)}
"""Typical magnitudes (termination bounds, speed limits) that observations are divided by."""

TASKS = {
    "CartPole-F": ("CartPole-v1", (0, 1, 2, 3)),
    "CartPole-P": ("CartPole-v1", (0, 2)),
    "CartPole-V": ("CartPole-v1", (1, 3)),
    "Pendulum-F": ("Pendulum-v1", (0, 1, 2)),
    "Pendulum-P": ("Pendulum-v1", (0, 1)),
    "Pendulum-V": ("Pendulum-v1", (2,)),
    "RepeatFirst": ("popgym:popgym-RepeatFirstEasy-v0", None),
    "CueRecall": ("snnlib/CueRecall-v0", None),
}
"""Task name -> (gymnasium id or popgym entry point, kept observation coordinates or None for all)."""


class CueRecall(gym.Env):
    """The cue-recall T-maze (module docstring): observations [cue left, cue right, go], 2 actions.

    `length` steps per episode (>= 2): the cue at step 0, `length - 2` empty corridor steps, "go"
    at the last step, whose action is rewarded +1 if it names the cue and -1 otherwise.
    """

    def __init__(self, length: int = 10):
        if isinstance(length, bool) or not isinstance(length, int) or length < 2:
            raise ValueError(f"CueRecall length must be an int >= 2 (cue step and go step), got {length!r}")
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (3,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def _observation(self) -> np.ndarray:
        obs = np.zeros(3, dtype=np.float32)
        if self.t == 0:
            obs[self.cue] = 1.0
        if self.t == self.length - 1:
            obs[2] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.cue = 0, int(self.np_random.integers(2))
        return self._observation(), {"cue": self.cue}

    def step(self, action):
        final = self.t == self.length - 1
        reward = (1.0 if int(action) == self.cue else -1.0) if final else 0.0
        self.t += 1
        return (np.zeros(3, dtype=np.float32) if final else self._observation()), reward, final, False, {}


gym.register("snnlib/CueRecall-v0", entry_point=CueRecall)


class _KeepCoordinates(gym.ObservationWrapper):
    """Observation obs[keep] / scale[keep] (a scaled POMDP view of a fully observable environment)."""

    def __init__(self, env: gym.Env, keep: tuple[int, ...], scale: tuple[float, ...]):
        super().__init__(env)
        self.keep = np.asarray(keep)
        self.scale = np.asarray(scale, dtype=np.float32)[self.keep]
        space = env.observation_space
        self.observation_space = gym.spaces.Box(space.low[self.keep] / self.scale, space.high[self.keep] / self.scale,
                                                dtype=space.dtype)

    def observation(self, observation):
        return (observation[self.keep] / self.scale).astype(np.float32)


class _OneHot(gym.ObservationWrapper):
    """Discrete observation i -> one-hot float vector."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.size = int(env.observation_space.n)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.size,), dtype=np.float32)

    def observation(self, observation):
        return np.eye(self.size, dtype=np.float32)[int(observation)]


class _DiscreteTorque(gym.ActionWrapper):
    """Action i -> torque PENDULUM_TORQUES[i]."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.action_space = gym.spaces.Discrete(len(PENDULUM_TORQUES))

    def action(self, action):
        return np.array([PENDULUM_TORQUES[int(action)]], dtype=np.float32)


def make_env(task: str, max_episode_steps: int | None = None) -> gym.Env:
    """The gymnasium environment of `task` (a key of `TASKS`), optionally with a shorter time limit."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    env_id, keep = TASKS[task]
    if env_id.startswith("popgym:") and importlib.util.find_spec("popgym") is None:
        raise ModuleNotFoundError(f"task {task!r} needs popgym: pip install popgym==1.0.7")
    env = gym.make(env_id, max_episode_steps=max_episode_steps)
    if env_id.startswith("Pendulum"):
        env = _DiscreteTorque(env)
    if isinstance(env.observation_space, gym.spaces.Discrete):
        env = _OneHot(env)
    return env if keep is None else _KeepCoordinates(env, keep, OBSERVATION_SCALE[env_id])


class ActorCritic(nn.Module):
    """Embedding -> recurrent core (`make_core(core_kind)`) -> policy logits and value (module docstring).

    forward(obs `[T, B, obs_size]`) -> (logits `[T, B, n_actions]`, values `[T, B]`). The core's
    state carries over between calls: reset it with `functional.reset_net(model)` per episode.
    """

    def __init__(self, obs_size: int, n_actions: int, core_kind: str, *, embed: int = 32, hidden: int = 64,
                 head: int = 64, num_layers: int = 1, substeps: int = 4, reset_each_step: bool = True):
        super().__init__()
        self.core_kind = core_kind
        self.embed = nn.Sequential(nn.Linear(obs_size, embed), nn.ReLU())
        self.core = make_core(core_kind, embed, hidden, num_layers=num_layers, substeps=substeps,
                              reset_each_step=reset_each_step)
        self.policy = nn.Sequential(nn.Linear(hidden, head), nn.Tanh(), nn.Linear(head, n_actions))
        self.value = nn.Sequential(nn.Linear(hidden, head), nn.Tanh(), nn.Linear(head, 1))

    def forward(self, obs_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.core(self.embed(obs_seq))
        return self.policy(features), self.value(features).squeeze(-1)


@dataclass(frozen=True)
class PPOConfig:
    """Hyper-parameters of `train_ppo` (module docstring); `total_steps` counts environment steps."""

    total_steps: int = 20_000
    episodes_per_batch: int = 8
    ppo_epochs: int = 4
    minibatches: int = 2
    lr: float = 2e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    max_grad_norm: float = 0.5
    reward_scale: float = 0.1
    max_episode_steps: int = 200
    embed: int = 32
    hidden: int = 64
    head: int = 64
    num_layers: int = 1
    substeps: int = 4
    reset_each_step: bool = True
    anneal_lr: bool = False

    def __post_init__(self):
        for name in ("total_steps", "episodes_per_batch", "ppo_epochs", "minibatches", "max_episode_steps",
                     "embed", "hidden", "head", "num_layers", "substeps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PPOConfig.{name} must be a positive int, got {value!r}")
        if self.minibatches > self.episodes_per_batch:
            raise ValueError("PPOConfig.minibatches cannot exceed episodes_per_batch (one episode at least per group)")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1 and self.lr > 0 and self.clip > 0
                and self.reward_scale > 0):
            raise ValueError("PPOConfig needs 0 < gamma <= 1, 0 <= gae_lambda <= 1 and lr, clip, reward_scale > 0")

    def agent_kwargs(self) -> dict:
        """The `ActorCritic` keyword arguments these settings give (everything but sizes and core kind)."""
        return dict(embed=self.embed, hidden=self.hidden, head=self.head, num_layers=self.num_layers,
                    substeps=self.substeps, reset_each_step=self.reset_each_step)

    @staticmethod
    def check(config) -> None:
        """A TypeError unless `config` is a PPOConfig."""
        if not isinstance(config, PPOConfig):
            raise TypeError(f"config must be an snnlib.rl.PPOConfig, got {type(config).__name__}")


@dataclass
class Episodes:
    """A batch of episodes, padded to the longest: tensors `[T, B, ...]`, mask 1 on valid steps.

    values, rewards and mask are `[T, B]`; for a team (`snnlib.marl`) actions and log_probs carry
    an agent axis, `[T, B, agents]`, and values and rewards are the team's.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor

    @property
    def returns(self) -> np.ndarray:
        """Undiscounted return of each episode, `[B]`."""
        return (self.rewards * self.mask).sum(0).numpy()

    @property
    def lengths(self) -> np.ndarray:
        return self.mask.sum(0).numpy().astype(int)


def _sample(logits: torch.Tensor, generator: torch.Generator | None, greedy: bool) -> torch.Tensor:
    """One action per row of logits `[..., n_actions]` -> `[...]`."""
    if greedy:
        return logits.argmax(-1)
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).reshape(probs.shape[:-1])


@torch.no_grad()
def collect_episodes(model: ActorCritic, envs: list[gym.Env], env_seeds, generator: torch.Generator | None = None,
                     greedy: bool = False) -> Episodes:
    """Run one episode in each of `envs` (reset with `env_seeds`) in parallel; the core state starts at reset.

    Actions are sampled with `generator` (or the most likely action if `greedy`). Finished
    episodes idle (masked) until the last one ends. `model(obs[None])` must return (logits
    `[1, B, ..., n_actions]`, values `[1, B]`); an action with agent axes reaches the environment
    as a list (`tolist()`), a single action as an int.
    """
    if len(envs) != len(env_seeds) or not envs:
        raise ValueError(f"need one seed per environment, got {len(envs)} environments and {len(env_seeds)} seeds")
    model.eval()
    functional.reset_net(model)
    obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, env_seeds)]).astype(np.float32)
    alive = np.ones(len(envs), dtype=bool)
    steps: dict[str, list] = {key: [] for key in ("obs", "actions", "log_probs", "values", "rewards", "mask")}
    while alive.any():
        x = torch.tensor(obs)  # a copy: obs is updated in place below
        logits, values = model(x[None])
        actions = _sample(logits[0], generator, greedy)
        rewards = np.zeros(len(envs), dtype=np.float32)
        mask = alive.astype(np.float32)
        for i in np.flatnonzero(alive):
            next_obs, reward, terminated, truncated, _ = envs[i].step(actions[i].tolist())
            obs[i], rewards[i] = next_obs, reward
            alive[i] = not (terminated or truncated)
        log_probs = _chosen(torch.log_softmax(logits[0], -1), actions)
        for key, value in (("obs", x), ("actions", actions), ("values", values[0]), ("rewards", rewards),
                           ("mask", mask), ("log_probs", log_probs)):
            steps[key].append(torch.as_tensor(value))
    model.train()
    return Episodes(**{key: torch.stack(value) for key, value in steps.items()})


def _chosen(log_probs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a) of the chosen actions `[...]` from log-probabilities `[..., n_actions]`."""
    return log_probs.gather(-1, actions[..., None])[..., 0]


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float):
    """Advantages and returns `[T, B]` by generalised advantage estimation (module docstring)."""
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[0])
    next_adv = torch.zeros_like(rewards[0])
    next_mask = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * next_value * next_mask - values[t]
        next_adv = (delta + gamma * lam * next_mask * next_adv) * mask[t]
        advantages[t] = next_adv
        next_value, next_mask = values[t], mask[t]
    return advantages, (advantages + values) * mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x over the steps where mask is 1 (x and mask `[T, B]`)."""
    return (x * mask).sum() / mask.sum()


def policy_loss_terms(logits: torch.Tensor, actions: torch.Tensor, old_log_probs: torch.Tensor,
                      advantages: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-decision clipped surrogate loss -min(rho A, clip(rho, 1 - clip, 1 + clip) A) and entropy H(pi).

    logits `[..., n_actions]`; actions, old_log_probs `[...]`; advantages broadcastable to `[...]`.
    Returns two tensors shaped like actions.
    """
    log_probs = torch.log_softmax(logits, -1)
    ratio = torch.exp(_chosen(log_probs, actions) - old_log_probs)
    surrogate = -torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    return surrogate, -(log_probs.exp() * log_probs).sum(-1)


def _ppo_loss(model: ActorCritic, batch: Episodes, advantages, returns, idx, config: PPOConfig) -> torch.Tensor:
    """PPO loss (module docstring) of the episodes `idx` of `batch`, replayed from a reset core."""
    functional.reset_net(model)
    logits, values = model(batch.obs[:, idx])
    surrogate, entropy = policy_loss_terms(logits, batch.actions[:, idx], batch.log_probs[:, idx], advantages[:, idx],
                                           config.clip)
    value_loss = 0.5 * (values - returns[:, idx]) ** 2
    return masked_mean(surrogate + config.value_coef * value_loss - config.entropy_coef * entropy, batch.mask[:, idx])


def _update(model, optimizer, batch: Episodes, config: PPOConfig, generator: torch.Generator,
            loss_fn: Callable = _ppo_loss) -> float:
    """PPO epochs over one batch of episodes with `loss_fn(model, batch, advantages, returns, idx, config)`
    on minibatches of episodes `idx`; returns the mean loss."""
    advantages, returns = gae(batch.rewards * config.reward_scale, batch.values, batch.mask, config.gamma,
                              config.gae_lambda)
    valid = batch.mask.bool()
    advantages = torch.where(valid, (advantages - advantages[valid].mean()) / (advantages[valid].std() + 1e-8), 0.0)
    losses = []
    for _ in range(config.ppo_epochs):
        order = torch.randperm(batch.mask.shape[1], generator=generator)
        for idx in order.chunk(config.minibatches):
            loss = loss_fn(model, batch, advantages, returns, idx, config)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            losses.append(loss.item())
    functional.reset_net(model)
    return float(np.mean(losses))


def _build(task: str, core_kind: str, config: PPOConfig, seed: int):
    seed_everything(seed)
    envs = [make_env(task, config.max_episode_steps) for _ in range(config.episodes_per_batch)]
    space = envs[0].observation_space
    model = ActorCritic(space.shape[0], envs[0].action_space.n, core_kind, **config.agent_kwargs())
    return envs, model


def _save(path, *, model, optimizer, history, rng, generator, signature) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
             "numpy_rng": rng.bit_generator.state, "torch_rng": generator.get_state(), "signature": signature}
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)


def _restore(path, *, model, optimizer, rng, generator, signature) -> list[dict]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("signature") != signature:
        raise ValueError(f"checkpoint {path} was made for {state.get('signature')}, not {signature}: "
                         "delete it or pass resume=False")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["numpy_rng"]
    generator.set_state(state["torch_rng"])
    return list(state["history"])


def train_loop(model: nn.Module, collect: Callable[[np.ndarray, torch.Generator], Episodes], n_envs: int,
               config: PPOConfig, *, seed: int, signature: dict, desc: str = "", loss_fn: Callable = _ppo_loss,
               checkpoint: str | os.PathLike | None = None, resume: bool = True, progress: bool = True) -> pd.DataFrame:
    """PPO iterations (module docstring) on `model` in place until `config.total_steps` environment steps.

    `collect(env_seeds, generator)` runs one batch of `n_envs` episodes (`collect_episodes`); the
    seeds come from a numpy Generator seeded with `seed`, actions and minibatch order from a
    torch.Generator seeded with `seed`. `signature` (a dict) identifies the run in a checkpoint,
    which is refused by a run with another signature. Returns the history (see `train_ppo`).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        history = _restore(checkpoint, model=model, optimizer=optimizer, rng=rng, generator=generator,
                           signature=signature)
    steps = history[-1]["env_steps"] if history else 0
    bar = tqdm(total=config.total_steps, initial=steps, desc=desc, disable=not progress, leave=False)
    start = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    while steps < config.total_steps:
        if config.anneal_lr:  # linear decay to 0 over the run, set from the steps done (so resuming agrees)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * (1.0 - steps / config.total_steps)
        batch = collect(rng.integers(0, 2**31, size=n_envs), generator)
        loss = _update(model, optimizer, batch, config, generator, loss_fn)
        steps += int(batch.mask.sum())
        history.append({"iteration": len(history) + 1, "env_steps": steps, "mean_return": float(batch.returns.mean()),
                        "mean_length": float(batch.lengths.mean()), "loss": loss,
                        "seconds": time.perf_counter() - start})
        bar.update(int(batch.mask.sum()))
        bar.set_postfix(ret=f"{history[-1]['mean_return']:.1f}")
        if checkpoint is not None:
            _save(checkpoint, model=model, optimizer=optimizer, history=history, rng=rng, generator=generator,
                  signature=signature)
    bar.close()
    return pd.DataFrame(history, columns=["iteration", "env_steps", "mean_return", "mean_length", "loss", "seconds"])


def train_ppo(task: str, core_kind: str, config: PPOConfig = PPOConfig(), *, seed: int = 0,
              checkpoint: str | os.PathLike | None = None, resume: bool = True,
              progress: bool = True) -> tuple[ActorCritic, pd.DataFrame]:
    """Train an `ActorCritic` with core `core_kind` on `task` for `config.total_steps` environment steps.

    Returns the model and the history, one row per iteration: iteration, env_steps,
    mean_return, mean_length, loss, seconds (cumulative wall time).
    """
    PPOConfig.check(config)
    envs, model = _build(task, core_kind, config, seed)
    history = train_loop(model, lambda seeds, generator: collect_episodes(model, envs, seeds, generator), len(envs),
                         config, seed=seed, signature={"task": task, "core": core_kind, "seed": seed, **asdict(config)},
                         desc=f"{task} {core_kind} seed {seed}", checkpoint=checkpoint, resume=resume,
                         progress=progress)
    return model, history


def evaluate_policy(model: ActorCritic, task: str, *, episodes: int = 10, seed: int = 0, greedy: bool = False,
                    max_episode_steps: int | None = 200) -> np.ndarray:
    """Returns of `episodes` evaluation episodes (environment seeds drawn from `seed`), `[episodes]`."""
    return evaluate_envs(model, [make_env(task, max_episode_steps) for _ in range(episodes)], seed=seed, greedy=greedy)


def evaluate_envs(model: nn.Module, envs: list, *, seed: int, greedy: bool = False) -> np.ndarray:
    """Returns of one episode in each of `envs`, environment seeds and actions drawn from `seed`, `[len(envs)]`."""
    seeds = np.random.default_rng(seed).integers(0, 2**31, size=len(envs))
    return collect_episodes(model, envs, seeds, torch.Generator().manual_seed(seed), greedy=greedy).returns


@torch.no_grad()
def count_operations(model: nn.Module, env, *, episodes: int, seed: int, samples_per_decision: int = 1) -> dict:
    """Synaptic operations per sample of `model` acting in `env` for `episodes` episodes (NeuroBench
    counting, snnlib.metrics); a decision feeds `samples_per_decision` rows to the model (1 agent,
    or a team's agents). Environment seeds and actions are drawn from `seed`.

    Returns effective_acs (inputs that are spikes), effective_macs (real-valued inputs), dense,
    energy_pj (the energy proxy) per sample, and decisions (environment steps run).
    """
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    decisions = 0
    with SynapticOperationCounter(model) as counter:
        for _ in range(episodes):
            decisions += int(collect_episodes(model, [env], rng.integers(0, 2**31, size=1), generator).mask.sum())
    totals = counter.totals(n_samples=decisions * samples_per_decision)
    return {**totals, "energy_pj": energy_proxy(totals["effective_acs"], totals["effective_macs"]),
            "decisions": decisions}


def operations_per_decision(model: ActorCritic, task: str, *, episodes: int = 3, seed: int = 0,
                            max_episode_steps: int | None = 200) -> dict[str, float]:
    """Synaptic operations per decision of `model` on `task` (`count_operations`).

    Runs `episodes` single-environment episodes, so every forward call is one decision. Returns
    effective ACs (inputs that are spikes), effective MACs (real-valued inputs), dense operations
    and the energy proxy (pJ) per decision. woTAP's spike rates (mean of K sub-steps) reach the
    heads as real values and count as MACs.
    """
    return count_operations(model, make_env(task, max_episode_steps), episodes=episodes, seed=seed)


def run_job(job: dict) -> dict:
    """Train, evaluate and count operations for one job, in one intra-op torch thread (tiny tensors;
    the caller's thread count is restored afterwards).

    `job`: task, core, seed, config (a dict of PPOConfig fields), eval_episodes, ops_episodes and
    optionally checkpoint (a path). Returns task, core, seed, history (list of dicts),
    eval_returns (list), ops (`operations_per_decision`) and cpu_seconds (this process's CPU
    time for the job). Evaluation episodes use seeds drawn from 10_000 + seed, never seen in training,
    and act greedily (the most likely action: the policy as deployed, without exploration noise).
    """
    with one_torch_thread():
        cpu_start = time.process_time()
        config = PPOConfig(**job["config"])
        model, history = train_ppo(job["task"], job["core"], config, seed=job["seed"],
                                   checkpoint=job.get("checkpoint"), progress=False)
        returns = evaluate_policy(model, job["task"], episodes=job["eval_episodes"], seed=10_000 + job["seed"], greedy=True,
                                  max_episode_steps=config.max_episode_steps)
        ops = operations_per_decision(model, job["task"], episodes=job["ops_episodes"], seed=job["seed"],
                                      max_episode_steps=config.max_episode_steps)
        cpu_seconds = time.process_time() - cpu_start
    return {"task": job["task"], "core": job["core"], "seed": job["seed"], "history": history.to_dict("records"),
            "eval_returns": returns.tolist(), "ops": ops, "cpu_seconds": cpu_seconds}

