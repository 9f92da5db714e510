"""Tests for snnlib.marl: the simple_spread team environment, VDN agents, team PPO.

References: the global reward recomputed from the world's positions, each agent's network run
alone on its own observations (per-agent core state), single steps from a reset state (woTAP),
two identical runs (determinism), the uniformly random team (learning).
"""

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional

from snnlib import marl, rl

pytest.importorskip("mpe2")


@pytest.fixture(autouse=True)
def one_thread():
    with rl.one_torch_thread():
        yield


def test_team_env_shapes_seeding_and_shared_reward():
    env = marl.TeamEnv(3, max_cycles=4)
    obs, _ = env.reset(seed=7)
    assert obs.shape == (3, 6 * 3) and obs.dtype == np.float32 and env.n_actions == marl.N_ACTIONS
    np.testing.assert_array_equal(marl.TeamEnv(3, max_cycles=4).reset(seed=7)[0], obs)
    assert not np.array_equal(env.reset(seed=8)[0], obs)
    env.reset(seed=7)
    world = env.env.unwrapped.world
    for step in range(4):
        obs, reward, terminated, truncated, _ = env.step([1, 2, 4])
        agents = np.array([a.state.p_pos for a in world.agents])
        landmarks = np.array([lm.state.p_pos for lm in world.landmarks])
        distances = np.linalg.norm(agents[None] - landmarks[:, None], axis=-1)  # [landmark, agent]
        assert reward == pytest.approx(-distances.min(1).sum())  # local_ratio 0: the global reward
        # local observation: own position, then landmarks relative to the agent
        np.testing.assert_allclose(obs[1, 2:4], agents[1], atol=1e-6)
        np.testing.assert_allclose(obs[1, 4:6], landmarks[0] - agents[1], atol=1e-6)
        assert not terminated and truncated == (step == 3)


def _agent_alone(model, obs, i):
    """Agent i's network run on its own observation sequence [T, B, obs] with its id, from a reset state."""
    ids = torch.zeros(*obs.shape[:2], model.n_agents)
    ids[..., i] = 1
    functional.reset_net(model)
    return model.agent(torch.cat([obs[:, :, i], ids], -1))


@pytest.mark.parametrize("kind", ["gru", "grsn-tap"])
def test_team_value_is_the_sum_of_separate_agents(kind):
    torch.manual_seed(0)
    model = marl.TeamActorCritic(6, 5, 3, kind, embed=8, hidden=16, head=16)
    obs = torch.randn(7, 2, 3, 6)
    functional.reset_net(model)
    with torch.no_grad():
        logits, team_value = model(obs)
        alone = [_agent_alone(model, obs, i) for i in range(3)]
    for i, (agent_logits, _) in enumerate(alone):  # each agent has its own core state
        torch.testing.assert_close(logits[:, :, i], agent_logits)
    torch.testing.assert_close(team_value, sum(values for _, values in alone))  # VDN: V_tot = sum_i V_i


def _spiking_team(kind, seed):
    """An untrained spiking team whose embedding is scaled up so that its neurons fire (else outputs are constant)."""
    torch.manual_seed(seed)
    model = marl.TeamActorCritic(12, 5, 2, kind, embed=8, hidden=16, head=16)
    with torch.no_grad():
        model.agent.embed[0].weight.mul_(10.0)
    return model


def _episodes(model, seeds=(3, 4)):
    envs = [marl.TeamEnv(2, max_cycles=6) for _ in seeds]
    return rl.collect_episodes(model, envs, list(seeds), torch.Generator().manual_seed(0))


def test_tap_state_lasts_the_episode_and_resets_at_its_end():
    model = _spiking_team("grsn-tap", 1)
    batch = _episodes(model)
    assert batch.obs.shape == (6, 2, 2, 12) and batch.actions.shape == (6, 2, 2) and batch.values.shape == (6, 2)
    again = _episodes(model)  # a new episode starts from a reset state: same numbers
    torch.testing.assert_close(again.log_probs, batch.log_probs)
    functional.reset_net(model)
    with torch.no_grad():  # replaying whole episodes reproduces the acting-time log-probs and values
        logits, values = model(batch.obs)
    torch.testing.assert_close(torch.log_softmax(logits, -1).gather(-1, batch.actions[..., None])[..., 0],
                               batch.log_probs)
    torch.testing.assert_close(values, batch.values)
    with torch.no_grad():  # ... while steps taken alone (no history) give other outputs: state carries over
        alone = [(functional.reset_net(model), model(batch.obs[t:t + 1])[0][0])[1] for t in range(6)]
    assert not torch.allclose(torch.stack(alone), logits)


def test_wotap_agents_reset_every_step():
    model = _spiking_team("grsn-wotap", 2)
    batch = _episodes(model)
    functional.reset_net(model)
    with torch.no_grad():
        logits, _ = model(batch.obs)
    assert logits.std(0).max() > 1e-3  # the neurons fire: outputs change with the input
    with torch.no_grad():
        for t in range(batch.obs.shape[0]):
            functional.reset_net(model)
            torch.testing.assert_close(model(batch.obs[t:t + 1])[0][0], logits[t])


SMALL = rl.PPOConfig(total_steps=100, episodes_per_batch=4, minibatches=2, ppo_epochs=2, embed=8, hidden=16, head=16,
                     max_episode_steps=10)


def test_same_seed_same_history_and_foreign_checkpoint_refused(tmp_path):
    _, first = marl.train_marl("grsn-tap", SMALL, seed=3, progress=False)
    _, second = marl.train_marl("grsn-tap", SMALL, seed=3, progress=False)
    cols = ["env_steps", "mean_return", "loss"]
    assert len(first) == 3 and first["env_steps"].iloc[-1] == 120
    assert first[cols].equals(second[cols])
    _, other = marl.train_marl("grsn-tap", SMALL, seed=4, progress=False)
    assert not first["mean_return"].equals(other["mean_return"])
    ckpt = tmp_path / "team.pt"
    marl.train_marl("gru", SMALL, seed=3, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="checkpoint"):
        marl.train_marl("gru", SMALL, n_agents=3, seed=3, checkpoint=ckpt, progress=False)


def test_run_marl_job_reports_per_agent_operations():
    job = {"core": "gru", "seed": 0, "agents": 2, "local_ratio": 0.0, "config": {**SMALL.__dict__, "total_steps": 40},
           "eval_episodes": 3, "ops_episodes": 1}
    result = marl.run_marl_job(job)
    assert result["core"] == "gru" and len(result["eval_returns"]) == 3 and result["ops"]["decisions"] == 10
    # GRU agent per decision: embed (12 + 2 ids) x 8, input map 8 x 48, hidden map 16 x 48, heads 2 x (16 x 16) + 16 x 6
    assert result["ops"]["dense"] == 14 * 8 + 8 * 48 + 16 * 48 + 2 * 16 * 16 + 16 * 5 + 16 * 1


class _NameYourId:
    """A trivially learnable team task (test double of TeamEnv): every step, agent i is paid 1/N for
    choosing action i + 1; its observation is noise, so only its id tells it what to do.
    Random team: 5 steps x 1/5 = 1 per episode; the best team gets 5."""

    def __init__(self, n_agents=2, steps=5):
        self.n_agents, self.steps, self.rng = n_agents, steps, None

    def _obs(self):
        return self.rng.normal(size=(self.n_agents, 4)).astype(np.float32)

    def reset(self, seed=None):
        self.rng, self.t = np.random.default_rng(seed), 0
        return self._obs(), {}

    def step(self, actions):
        self.t += 1
        reward = float(np.mean([a == i + 1 for i, a in enumerate(actions)]))
        return self._obs(), reward, False, self.t == self.steps, {}


def test_team_ppo_learns_a_trivially_learnable_team_task():
    """simple_spread itself needs ~15k steps (tens of seconds) to beat the random team, too slow for a
    unit test; the notebook measures that. Here: the same trainer on a task a few hundred steps solve."""
    config = rl.PPOConfig(total_steps=600, episodes_per_batch=8, ppo_epochs=4, minibatches=2, lr=1e-2, embed=8,
                          hidden=16, head=16, max_episode_steps=5, reward_scale=1.0)
    envs = [_NameYourId() for _ in range(8)]
    torch.manual_seed(0)
    model = marl.TeamActorCritic(4, 5, 2, "grsn-tap", embed=8, hidden=16, head=16)
    history = rl.train_loop(model, lambda seeds, gen: rl.collect_episodes(model, envs, seeds, gen), len(envs), config,
                            seed=0, signature={}, loss_fn=marl.team_ppo_loss, progress=False)
    seeds = list(range(100, 116))
    generator = torch.Generator().manual_seed(0)
    trained = rl.collect_episodes(model, [_NameYourId() for _ in seeds], seeds, generator).returns.mean()
    uniform = marl.UniformPolicy(2, 5)
    random = rl.collect_episodes(uniform, [_NameYourId() for _ in seeds], seeds, generator).returns.mean()
    assert history["mean_return"].iloc[-1] > history["mean_return"].iloc[0]
    assert trained > 2.5 * random and random < 1.6, (trained, random)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="n_agents"):
        marl.TeamEnv(1)
    with pytest.raises(ValueError, match="local_ratio"):
        marl.TeamEnv(2, local_ratio=1.5)
    with pytest.raises(ValueError, match="one action per agent"):
        env = marl.TeamEnv(2)
        env.reset(seed=0)
        env.step([0])
    with pytest.raises(TypeError, match="PPOConfig"):
        marl.train_marl("gru", {"total_steps": 10})
    with pytest.raises(ValueError, match="team observations"):
        marl.TeamActorCritic(6, 5, 2, "gru", embed=8, hidden=8, head=8)(torch.zeros(1, 1, 3, 6))
