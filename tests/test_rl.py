"""Tests for snnlib.rl: POMDP views of gymnasium tasks, GAE, episode collection, recurrent PPO.

References: the unmasked gymnasium environment stepped with the same seed and actions, GAE and
discounted returns written as plain per-episode loops, CartPole's reward of 1 per step.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional

from snnlib import rl


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread contention (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("task", ["CartPole-P", "CartPole-V", "Pendulum-P", "Pendulum-V"])
def test_masked_tasks_keep_the_named_coordinates_scaled(task):
    env_id, keep = rl.TASKS[task]
    masked = rl.make_env(task)
    raw = gym.make(env_id)
    scale = np.asarray(rl.OBSERVATION_SCALE[env_id], dtype=np.float32)[list(keep)]
    obs_m, _ = masked.reset(seed=3)
    obs_raw, _ = raw.reset(seed=3)
    assert masked.observation_space.shape == (len(keep),)
    for action in [0, 1, 1, 0, 1]:
        np.testing.assert_allclose(obs_m, obs_raw[list(keep)] / scale, rtol=1e-6)
        obs_m, *_ = masked.step(action)
        obs_raw, *_ = raw.step(action if env_id.startswith("CartPole") else [rl.PENDULUM_TORQUES[action]])


def test_repeat_first_is_one_hot_and_rewards_remembering_the_first_card():
    env = rl.make_env("RepeatFirst")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,) and obs.sum() == 1
    first, total, done = int(obs.argmax()), 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(first)
        total, done = total + reward, terminated or truncated
    assert total == pytest.approx(1.0)


def test_cue_recall_rewards_naming_the_cue_at_go_only():
    env = rl.make_env("CueRecall")
    for seed, correct in ((3, True), (4, False), (5, True)):
        obs, info = env.reset(seed=seed)
        cue = info["cue"]
        assert obs.tolist() == [float(cue == 0), float(cue == 1), 0.0]
        rewards, seen = [], [obs]
        for t in range(10):
            action = (cue if correct else 1 - cue) if t == 9 else t % 2  # corridor actions earn nothing
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            if t < 9:
                seen.append(obs)
            assert terminated == (t == 9) and not truncated
        assert all(o.tolist() == [0.0, 0.0, 0.0] for o in seen[1:-1]) and seen[-1].tolist() == [0.0, 0.0, 1.0]
        assert rewards[:9] == [0.0] * 9 and rewards[9] == (1.0 if correct else -1.0)
    with pytest.raises(ValueError, match="length"):
        rl.CueRecall(length=1)


class _FixedPolicy(torch.nn.Module):
    """A memoryless stand-in policy: the same logits [0, 0.2] for every observation."""

    def forward(self, obs):
        steps, batch = obs.shape[:2]
        return torch.tensor([0.0, 0.2]).expand(steps, batch, 2), torch.zeros(steps, batch)


def test_greedy_evaluation_takes_the_most_likely_action():
    envs = [rl.make_env("CueRecall") for _ in range(40)]
    greedy = rl.evaluate_envs(_FixedPolicy(), envs, seed=7, greedy=True)
    cues = [env.unwrapped.cue for env in envs]
    assert greedy.tolist() == [1.0 if cue == 1 else -1.0 for cue in cues]  # always action 1
    sampled = rl.evaluate_envs(_FixedPolicy(), envs, seed=7)
    assert sampled.tolist() != greedy.tolist()


def test_gae_with_lambda_one_gives_discounted_returns():
    torch.manual_seed(0)
    rewards, values = torch.rand(6, 2), torch.rand(6, 2)
    mask = torch.ones(6, 2)
    mask[4:, 1] = 0  # the second episode has 4 steps
    adv, ret = rl.gae(rewards, values, mask, gamma=0.9, lam=1.0)
    for b, length in ((0, 6), (1, 4)):
        expected = [sum(0.9**k * rewards[t + k, b].item() for k in range(length - t)) for t in range(length)]
        np.testing.assert_allclose(ret[:length, b].numpy(), expected, rtol=1e-5)
        np.testing.assert_allclose(adv[:length, b].numpy(), np.array(expected) - values[:length, b].numpy(), rtol=1e-5)
    assert torch.all(adv[4:, 1] == 0) and torch.all(ret[4:, 1] == 0)


def test_gae_with_lambda_zero_is_the_one_step_td_error():
    torch.manual_seed(1)
    rewards, values, mask = torch.rand(5, 1), torch.rand(5, 1), torch.ones(5, 1)
    adv, _ = rl.gae(rewards, values, mask, gamma=0.95, lam=0.0)
    next_values = torch.cat([values[1:], torch.zeros(1, 1)])
    torch.testing.assert_close(adv, rewards + 0.95 * next_values - values)


@pytest.mark.parametrize("kind", ["gru", "grsn-tap", "lif-wotap"])
def test_collected_episodes_replay_to_the_same_log_probs(kind):
    torch.manual_seed(0)
    model = rl.ActorCritic(4, 2, kind, embed=8, hidden=16, head=16)
    envs = [rl.make_env("CartPole-F", 50) for _ in range(3)]
    batch = rl.collect_episodes(model, envs, [1, 2, 3], torch.Generator().manual_seed(0))
    assert batch.obs.shape[:2] == batch.mask.shape and batch.mask.shape[1] == 3
    np.testing.assert_array_equal(batch.returns, batch.lengths)  # CartPole pays 1 per step
    assert batch.lengths.max() == batch.mask.shape[0]
    # first observation is the environment's reset observation
    np.testing.assert_array_equal(batch.obs[0, 1].numpy(), rl.make_env("CartPole-F").reset(seed=2)[0])
    # replaying the whole episodes from a reset state reproduces the acting-time log-probabilities (TAP)
    functional.reset_net(model)
    with torch.no_grad():
        logits, values = model(batch.obs)
    log_probs = torch.log_softmax(logits, -1).gather(-1, batch.actions[..., None])[..., 0]
    valid = batch.mask.bool()
    torch.testing.assert_close(log_probs[valid], batch.log_probs[valid])
    torch.testing.assert_close(values[valid], batch.values[valid])


SMALL = rl.PPOConfig(total_steps=150, episodes_per_batch=4, minibatches=2, ppo_epochs=2, embed=8, hidden=16,
                     head=16, max_episode_steps=60)


def test_training_is_deterministic_and_refuses_a_foreign_checkpoint(tmp_path):
    _, straight = rl.train_ppo("CartPole-P", "grsn-tap", SMALL, seed=5, progress=False)
    _, again = rl.train_ppo("CartPole-P", "grsn-tap", SMALL, seed=5, progress=False)
    cols = ["env_steps", "mean_return", "loss"]
    assert len(straight) >= 2
    assert straight[cols].equals(again[cols])
    ckpt = tmp_path / "run.pt"
    rl.train_ppo("CartPole-P", "grsn-tap", SMALL, seed=5, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="checkpoint"):
        rl.train_ppo("CartPole-P", "grsn-tap", SMALL, seed=6, checkpoint=ckpt, progress=False)


def test_resume_continues_an_unfinished_run(tmp_path, monkeypatch):
    ckpt = tmp_path / "run.pt"
    calls = {"n": 0}
    original = rl._update

    def crash_after_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(rl, "_update", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        rl.train_ppo("CartPole-P", "gru", SMALL, seed=2, checkpoint=ckpt, progress=False)
    monkeypatch.setattr(rl, "_update", original)
    _, resumed = rl.train_ppo("CartPole-P", "gru", SMALL, seed=2, checkpoint=ckpt, progress=False)
    _, straight = rl.train_ppo("CartPole-P", "gru", SMALL, seed=2, progress=False)
    cols = ["env_steps", "mean_return", "loss"]
    assert resumed[cols].equals(straight[cols])


def test_trainer_improves_on_fully_observable_cartpole():
    config = rl.PPOConfig(total_steps=2500, episodes_per_batch=8, ppo_epochs=8, minibatches=4, lr=3e-3, embed=16,
                          hidden=32, head=32)
    model, history = rl.train_ppo("CartPole-F", "gru", config, seed=0, progress=False)
    before = rl.evaluate_policy(rl.ActorCritic(4, 2, "gru", embed=16, hidden=32, head=32), "CartPole-F",
                                episodes=16, seed=99)
    after = rl.evaluate_policy(model, "CartPole-F", episodes=16, seed=99)
    assert history["env_steps"].iloc[-1] >= 3000
    assert after.mean() > 2 * before.mean() and after.mean() > 50, (before.mean(), after.mean())


def test_operations_per_decision_count_spikes_as_accumulates():
    torch.manual_seed(0)
    spiking = rl.ActorCritic(4, 2, "grsn-tap", embed=8, hidden=16, head=16)
    gru = rl.ActorCritic(4, 2, "gru", embed=8, hidden=16, head=16)
    ops_gru = rl.operations_per_decision(gru, "CartPole-F", episodes=1, seed=0)
    ops_snn = rl.operations_per_decision(spiking, "CartPole-F", episodes=1, seed=0)
    assert ops_gru["effective_acs"] == 0  # every GRU input is real-valued
    # GRU dense ops per decision: embed 4x8, input map 8x48, hidden map 16x48, two heads 16x16 + 16x2 and 16x16 + 16x1
    assert ops_gru["dense"] == 4 * 8 + 8 * 48 + 16 * 48 + (16 * 16 + 16 * 2) + (16 * 16 + 16 * 1)
    assert ops_snn["energy_pj"] == pytest.approx(0.9 * ops_snn["effective_acs"] + 4.6 * ops_snn["effective_macs"])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown task"):
        rl.make_env("CartPole-X")
    with pytest.raises(ValueError, match="minibatches"):
        rl.PPOConfig(episodes_per_batch=2, minibatches=4)
    with pytest.raises(ValueError, match="positive int"):
        rl.PPOConfig(total_steps=0)
    with pytest.raises(TypeError, match="PPOConfig"):
        rl.train_ppo("CartPole-F", "gru", {"total_steps": 10})


def test_run_job_trains_evaluates_greedily_and_counts_operations():
    config = {**SMALL.__dict__, "total_steps": 60}
    job = {"task": "CartPole-P", "core": "lif-wotap", "seed": 1, "config": config, "eval_episodes": 2, "ops_episodes": 1}
    result = rl.run_job(job)
    assert result["core"] == "lif-wotap" and len(result["eval_returns"]) == 2
    assert result["history"][-1]["env_steps"] >= 60 and result["ops"]["decisions"] > 0 and result["cpu_seconds"] > 0
    again = rl.run_job(job)  # greedy evaluation: the same trained policy gives the same returns
    assert again["eval_returns"] == result["eval_returns"]


def test_qin2025_config_gives_every_core_an_lr_and_gates_memory_claims_on_the_mlp():
    from snnlib.claims import load_specs
    from snnlib.config import load_work_config
    from snnlib.methods.gated_recurrent_neuron import CORE_KINDS

    for profile in ("smoke", "default", "paper"):
        cfg = load_work_config("qin2025", profile)
        assert set(cfg["lr"]) == set(cfg["cores"]) <= set(CORE_KINDS), profile
        assert cfg["memory_task"] in rl.TASKS and cfg["memory_task"] in cfg["steps"]
    specs = load_specs("qin2025")
    memory = [s for s in specs.values() if "cue recall" in s.quantity and s.test != "ratio"]
    assert len(memory) >= 5
    for spec in memory:
        (fails,) = [p for p in spec.preconditions if p.id == "memoryless_fails"]
        assert fails.max is not None and fails.min is None
    assert all(s.min_seeds >= 5 for s in specs.values())


def test_anneal_lr_falls_linearly_to_zero_over_the_run(monkeypatch):
    config = rl.PPOConfig(**{**SMALL.__dict__, "total_steps": 100, "anneal_lr": True, "lr": 0.01})
    envs, model = rl._build("CueRecall", "mlp", config, 0)
    optimizers, seen = [], []
    adam = torch.optim.Adam
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **k: optimizers.append(adam(*a, **k)) or optimizers[-1])

    def collect(seeds, generator):  # the lr in force for the update that follows this batch
        seen.append(optimizers[0].param_groups[0]["lr"])
        return rl.collect_episodes(model, envs, seeds, generator)

    history = rl.train_loop(model, collect, len(envs), config, seed=0, signature={}, progress=False)
    done = [0] + history.env_steps.tolist()[:-1]
    assert len(seen) > 2 and seen == pytest.approx([0.01 * (1 - s / 100) for s in done])
