"""Cooperative multi-agent RL with recurrent (spiking or GRU) agents: value-decomposed PPO on MPE simple_spread.

Qin et al. 2025 (GRSN) also test their cores as the agents of QMIX on StarCraft (SMAC). SMAC
cannot be installed offline and the authors' code has no multi-agent part, so this module asks the
same question -- do GRSN agents cooperate as well as GRU agents? -- on the cooperative particle
task that installs from PyPI (mpe2 `simple_spread_v3`, parallel API, discrete actions):

Task. N agents and N landmarks in the plane (N = 2 or 3). Agent i sees only its local
observation o_i = (own velocity, own position, landmark positions relative to it, other agents'
positions relative to it, their communication -- always zero here), 6N numbers, and picks one
of 5 moves. The team reward per step is the mean of the agents' rewards,

    r[t] = (1/N) sum_i r_i[t],   r_i = (1 - local_ratio) g + local_ratio l_i,
    g = -sum_landmarks min_agents |p_agent - p_landmark|     (shared: cover every landmark)
    l_i = -(number of agents colliding with agent i)          (local: avoid collisions)

With local_ratio = 0 (the default here) every agent receives g, so r[t] = g: the reward is fully
shared. An episode lasts `max_cycles` steps (= `PPOConfig.max_episode_steps`) and never ends
early. `TeamEnv` wraps the environment with the gymnasium interface of `snnlib.rl` (observations
`[N, obs]`, actions `[N]`, one team reward).

Agents (`TeamActorCritic`). The agents share the parameters of one `snnlib.rl.ActorCritic`
(embedding -> core of `make_core` -> policy and value heads); agent i reads o_i with its one-hot
id appended, so shared weights can still act differently per agent. Each agent has its own core
state h_i (its own batch row, reset at the start of every episode; woTAP cores also reset at every
step) and decides from its own history only (decentralised execution):

    h_i[t] = core(h_i[t-1], relu(W_e [o_i[t], onehot(i)] + b_e))
    pi_i(a | h_i[t]) = softmax(policy(h_i[t])),   V_i[t] = value(h_i[t])
    V_tot[t] = sum_i V_i[t]                                  (VDN additive value decomposition)

Training (PPO, `snnlib.rl.train_loop`). The team is trained like one agent whose action is the
joint action: per batch of episodes, GAE on the team reward with the team value gives the team
advantage A[t] and return R[t] (`snnlib.rl.gae`); the loss averages the clipped surrogate over
agents, each with its own probability ratio but the shared A[t],

    L = mean_t [ (1/N) sum_i -min(rho_i A, clip(rho_i, 1 - eps, 1 + eps) A)
                 + c_v (V_tot - R)^2 / 2 - c_e (1/N) sum_i H(pi_i) ],
    rho_i = pi_i(a_i | h_i) / pi_i,old(a_i | h_i),

so only the sum of the agents' values is fitted to the team return and each V_i learns the share
of it that its own history predicts (VDN). Why this design: parameter sharing and one on-policy
trainer keep the CPU cost of a team that of one agent with N times the batch, and reuse the
single-agent PPO of `snnlib.rl` (whole-episode rollouts, so recurrent states never need to be
stored or replayed from the middle of an episode); the additive value is the simplest value
decomposition, and the team advantage is the signal every agent's policy must improve.

Departures from the paper (QMIX on SMAC): QMIX is off-policy Q-learning from a replay buffer of
episodes with target networks and epsilon-greedy exploration; it decomposes the joint action
value Q_tot(s, a) = f(Q_1, ..., Q_N; s) with a monotonic mixing network whose weights come from
hypernetworks on the global state. Here: on-policy PPO actor-critic, state values V instead of
action values, a fixed additive mixer (sum; QMIX's mixer with all weights 1 and no bias) that never
sees the global state, and a small particle task (2-3 agents, 25 steps) instead of StarCraft
micromanagement. Randomness: the model initialisation (`seed_everything(seed)`), environment seeds
from a numpy Generator, actions and minibatch order from a torch.Generator, all from `seed`.
Time-first throughout: team observation sequences are `[T, B, N, obs]`.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch
from spikingjelly.activation_based import functional
from torch import nn

from snnlib import rl
from snnlib.checks import positive_int, real
from snnlib.training import seed_everything

__all__ = ["TeamEnv", "TeamActorCritic", "UniformPolicy", "team_ppo_loss", "train_marl", "evaluate_team",
           "random_team_returns", "team_operations_per_agent", "run_marl_job"]

N_ACTIONS = 5
"""simple_spread's discrete moves: no-op, left, right, down, up."""


class TeamEnv:
    """mpe2 `simple_spread_v3` (parallel API) as one team environment with the gymnasium interface.

    reset(seed) -> (observations `[N, obs_size]` float32, info); step(actions, N ints) ->
    (observations, team reward (mean of the agents' rewards), terminated, truncated, info).
    Agents are in the environment's order agent_0, agent_1, ...
    """

    def __init__(self, n_agents: int = 2, *, local_ratio: float = 0.0, max_cycles: int = 25):
        if positive_int("n_agents", n_agents) < 2:
            raise ValueError(f"n_agents must be an int >= 2 (a team), got {n_agents!r}")
        positive_int("max_cycles", max_cycles)
        real("local_ratio (a weight, 0: fully shared reward)", local_ratio, 0.0, 1.0)
        if importlib.util.find_spec("mpe2") is None:
            raise ModuleNotFoundError("the multi-agent task needs mpe2: pip install mpe2==1.1.1 pettingzoo==1.27.0 "
                                      "pygame-ce==2.5.8")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame's import banner
        from mpe2 import simple_spread_v3

        self.env = simple_spread_v3.parallel_env(N=n_agents, local_ratio=float(local_ratio), max_cycles=max_cycles,
                                                 continuous_actions=False)
        self.agents = list(self.env.possible_agents)
        self.n_agents = n_agents
        self.obs_size = int(self.env.observation_space(self.agents[0]).shape[0])
        self.n_actions = int(self.env.action_space(self.agents[0]).n)

    def _stack(self, observations: dict) -> np.ndarray:
        return np.stack([observations[agent] for agent in self.agents]).astype(np.float32)

    def reset(self, seed: int | None = None):
        observations, infos = self.env.reset(seed=seed)
        return self._stack(observations), infos

    def step(self, actions):
        if len(actions) != self.n_agents:
            raise ValueError(f"need one action per agent ({self.n_agents}), got {len(actions)}")
        observations, rewards, terminated, truncated, infos = self.env.step(
            {agent: int(a) for agent, a in zip(self.agents, actions)})
        team_reward = float(np.mean([rewards[agent] for agent in self.agents]))
        return (self._stack(observations), team_reward, any(terminated.values()), any(truncated.values()), infos)


class TeamActorCritic(nn.Module):
    """N parameter-shared recurrent agents with a VDN team value (module docstring).

    forward(obs `[T, B, N, obs_size]`) -> (logits `[T, B, N, n_actions]`, team value V_tot `[T, B]`);
    `agent_outputs` gives the per-agent values V_i `[T, B, N]` instead. The agents' core states
    live in the shared core as separate batch rows (row b * N + i is agent i of environment b)
    and persist between calls: reset them with `functional.reset_net(model)` per episode.
    `agent_kwargs` go to `snnlib.rl.ActorCritic` (embed, hidden, head, num_layers, substeps, ...).
    """

    def __init__(self, obs_size: int, n_actions: int, n_agents: int, core_kind: str, **agent_kwargs):
        super().__init__()
        self.n_agents = n_agents
        self.agent = rl.ActorCritic(obs_size + n_agents, n_actions, core_kind, **agent_kwargs)
        self.register_buffer("agent_ids", torch.eye(n_agents))

    def agent_outputs(self, obs_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits `[T, B, N, n_actions]`, agent values `[T, B, N]`) of obs `[T, B, N, obs_size]`."""
        if obs_seq.dim() != 4 or obs_seq.shape[2] != self.n_agents:
            raise ValueError(f"expected team observations [T, B, {self.n_agents}, obs], got {tuple(obs_seq.shape)}")
        steps, batch = obs_seq.shape[:2]
        ids = self.agent_ids.expand(steps, batch, -1, -1)
        logits, values = self.agent(torch.cat([obs_seq, ids], -1).reshape(steps, batch * self.n_agents, -1))
        return logits.reshape(steps, batch, self.n_agents, -1), values.reshape(steps, batch, self.n_agents)

    def forward(self, obs_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, values = self.agent_outputs(obs_seq)
        return logits, values.sum(-1)


class UniformPolicy(nn.Module):
    """The random team: every agent picks each of `n_actions` moves with equal probability (value 0)."""

    def __init__(self, n_agents: int, n_actions: int):
        super().__init__()
        self.n_agents, self.n_actions = n_agents, n_actions

    def forward(self, obs_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        steps, batch = obs_seq.shape[:2]
        return torch.zeros(steps, batch, self.n_agents, self.n_actions), torch.zeros(steps, batch)


def team_ppo_loss(model: TeamActorCritic, batch: rl.Episodes, advantages, returns, idx,
                  config: rl.PPOConfig) -> torch.Tensor:
    """The team PPO loss (module docstring) on episodes `idx`, replayed from reset core states."""
    functional.reset_net(model)
    logits, team_values = model(batch.obs[:, idx])
    surrogate, entropy = rl.policy_loss_terms(logits, batch.actions[:, idx], batch.log_probs[:, idx],
                                              advantages[:, idx, None], config.clip)
    value_loss = 0.5 * (team_values - returns[:, idx]) ** 2
    per_step = surrogate.mean(-1) + config.value_coef * value_loss - config.entropy_coef * entropy.mean(-1)
    return rl.masked_mean(per_step, batch.mask[:, idx])


def _make_envs(count: int, n_agents: int, local_ratio: float, max_cycles: int) -> list[TeamEnv]:
    return [TeamEnv(n_agents, local_ratio=local_ratio, max_cycles=max_cycles) for _ in range(count)]


def train_marl(core_kind: str, config: rl.PPOConfig = rl.PPOConfig(max_episode_steps=25), *, n_agents: int = 2,
               local_ratio: float = 0.0, seed: int = 0, checkpoint: str | os.PathLike | None = None,
               resume: bool = True, progress: bool = True) -> tuple[TeamActorCritic, pd.DataFrame]:
    """Train a team of `n_agents` agents with core `core_kind` on simple_spread for `config.total_steps`
    environment (team) steps; episodes last `config.max_episode_steps` (max_cycles).

    Returns the model and the history, one row per iteration: iteration, env_steps, mean_return
    (team return of the batch's episodes), mean_length, loss, seconds. With `checkpoint` the run
    can be resumed as `snnlib.rl.train_ppo`.
    """
    rl.PPOConfig.check(config)
    envs = _make_envs(config.episodes_per_batch, n_agents, local_ratio, config.max_episode_steps)
    seed_everything(seed)
    model = TeamActorCritic(envs[0].obs_size, envs[0].n_actions, n_agents, core_kind, **config.agent_kwargs())
    signature = {"task": "simple_spread", "agents": n_agents, "local_ratio": local_ratio, "core": core_kind,
                 "seed": seed, **asdict(config)}
    history = rl.train_loop(model, lambda seeds, generator: rl.collect_episodes(model, envs, seeds, generator),
                            len(envs), config, seed=seed, signature=signature, loss_fn=team_ppo_loss,
                            desc=f"simple_spread N={n_agents} {core_kind} seed {seed}", checkpoint=checkpoint,
                            resume=resume, progress=progress)
    return model, history


def evaluate_team(model: nn.Module, *, episodes: int = 10, seed: int = 0, n_agents: int = 2,
                  local_ratio: float = 0.0, max_cycles: int = 25, greedy: bool = False) -> np.ndarray:
    """Team returns of `episodes` evaluation episodes (environment seeds and actions drawn from `seed`)."""
    return rl.evaluate_envs(model, _make_envs(episodes, n_agents, local_ratio, max_cycles), seed=seed, greedy=greedy)


def random_team_returns(*, episodes: int = 10, seed: int = 0, n_agents: int = 2, local_ratio: float = 0.0,
                        max_cycles: int = 25) -> np.ndarray:
    """Team returns of the uniformly random team on the episodes `evaluate_team` runs with the same seed."""
    return evaluate_team(UniformPolicy(n_agents, N_ACTIONS), episodes=episodes, seed=seed, n_agents=n_agents,
                         local_ratio=local_ratio, max_cycles=max_cycles)


def team_operations_per_agent(model: TeamActorCritic, *, episodes: int = 1, seed: int = 0, local_ratio: float = 0.0,
                              max_cycles: int = 25) -> dict[str, float]:
    """Synaptic operations per decision per agent (`snnlib.rl.count_operations`: ACs, MACs, dense,
    energy proxy), from `episodes` single-environment episodes."""
    env = TeamEnv(model.n_agents, local_ratio=local_ratio, max_cycles=max_cycles)
    return rl.count_operations(model, env, episodes=episodes, seed=seed, samples_per_decision=model.n_agents)


def run_marl_job(job: dict) -> dict:
    """Train, evaluate and count operations for one team run, in one torch thread.

    `job`: core, seed, agents, local_ratio, config (a dict of PPOConfig fields; max_episode_steps is
    max_cycles), eval_episodes, ops_episodes and optionally checkpoint. Returns task
    ("simple_spread"), core, seed, history (list of dicts), eval_returns (team returns on
    environment seeds drawn from 10_000 + seed, never seen in training), ops (per decision per
    agent) and cpu_seconds. Evaluation acts greedily (the most likely action of each agent).
    """
    with rl.one_torch_thread():
        cpu_start = time.process_time()
        config = rl.PPOConfig(**job["config"])
        env_kwargs = {"n_agents": job["agents"], "local_ratio": job["local_ratio"]}
        model, history = train_marl(job["core"], config, seed=job["seed"], checkpoint=job.get("checkpoint"),
                                    progress=False, **env_kwargs)
        returns = evaluate_team(model, episodes=job["eval_episodes"], seed=10_000 + job["seed"], greedy=True,
                                max_cycles=config.max_episode_steps, **env_kwargs)
        ops = team_operations_per_agent(model, episodes=job["ops_episodes"], seed=job["seed"],
                                        local_ratio=job["local_ratio"], max_cycles=config.max_episode_steps)
        cpu_seconds = time.process_time() - cpu_start
    return {"task": "simple_spread", "core": job["core"], "seed": job["seed"], "history": history.to_dict("records"),
            "eval_returns": returns.tolist(), "ops": ops, "cpu_seconds": cpu_seconds}
