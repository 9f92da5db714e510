"""Tests for snnlib.methods.snn_vs_rnn (He et al. 2020): the authors' SNN recurrence, the RNN
baselines, readouts and losses, and the parameter / operation counts.

References are written here independently: the authors' loop (u = decay u (1 - o) + W x, strict
'>' firing, rectangular surrogate) as a plain recurrence with its own autograd function, manual
RNN/LSTM recurrences, brute-force convolution tap counts, and the parameter counts of papers.md
section 1.5.
"""

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, neuron
from torch import nn

from snnlib.methods import snn_vs_rnn as he
from snnlib.surrogate import Rectangle

DECAY, THRESH = 0.3, 0.3

# Small configurations of every kind, input [T, B, 2, 8, 8], 3 classes.
SMALL = {
    "snn_mlp": {"in_shape": (2, 8, 8), "hidden": (16,), "classes": 3},
    "scnn": {"in_shape": (2, 8, 8), "channels": (4, 6, 6), "hidden": (12,), "classes": 3},
    "rnn": {"in_shape": (2, 8, 8), "hidden_size": 10, "num_layers": 2, "classes": 3},
    "lstm": {"in_shape": (2, 8, 8), "hidden_size": 10, "num_layers": 2, "classes": 3},
    "conv_rnn": {"in_shape": (2, 8, 8), "channels": (4, 6, 6), "hidden": (12,), "classes": 3},
    "conv_lstm": {"in_shape": (2, 8, 8), "channels": (4, 6, 6), "hidden": (12,), "classes": 3},
}
KINDS = list(SMALL)
BOOST = {"snn_mlp": 1.0, "scnn": 2.5}  # weight scale at which both tiny SNNs are active in every layer
T, B = 6, 3


def frames(seed: int, scale: float = 2.0) -> torch.Tensor:
    """Random frames [T, B, 2, 8, 8] in [0, scale)."""
    return torch.rand(T, B, 2, 8, 8, generator=torch.Generator().manual_seed(seed)) * scale


def small(kind: str, seed: int = 0) -> nn.Module:
    return he.make_model(kind, seed=seed, **SMALL[kind])


def first_weight(model: nn.Module) -> torch.Tensor:
    """The weight of the layer that sees the input."""
    return next(p for name, p in model.named_parameters() if name.endswith("weight"))


def boost(model: nn.Module, factor: float) -> nn.Module:
    """Scale every weight so that the tiny SNNs fire in every layer."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                p.mul_(factor)
    return model


# --------------------------------------------------------------------------- the authors' loop


class AuthorsSpike(torch.autograd.Function):
    """The authors' ActFun: forward u > thresh, backward 1/(2 lens) on |u - thresh| < lens."""

    @staticmethod
    def forward(ctx, u, lens):
        ctx.save_for_backward(u)
        ctx.lens = lens
        return u.gt(THRESH).float()

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * ((u - THRESH).abs() < ctx.lens).float() / (2 * ctx.lens), None


class AuthorsLIF:
    """mem = mem * decay * (1 - spike) + drive; spike = ActFun(mem), state starting at zero."""

    def __init__(self, lens: float, detach_reset: bool = False):
        self.lens, self.detach_reset = lens, detach_reset
        self.mem = self.spike = None

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        if self.mem is None:
            self.mem, self.spike = torch.zeros_like(drive), torch.zeros_like(drive)
        spike = self.spike.detach() if self.detach_reset else self.spike
        self.mem = self.mem * DECAY * (1 - spike) + drive
        self.spike = AuthorsSpike.apply(self.mem, self.lens)
        return self.spike


def authors_layer(drive: torch.Tensor, lens: float, detach_reset: bool = False):
    """The authors' recurrence over a drive [T, ...]: spikes and membranes [T, ...]."""
    lif = AuthorsLIF(lens, detach_reset)
    spikes, mems = [], []
    for x in drive:
        spikes.append(lif(x))
        mems.append(lif.mem)
    return torch.stack(spikes), torch.stack(mems)


def authors_mlp(model: he.SpikingMLP, x: torch.Tensor) -> torch.Tensor:
    """nmnist_snn.py's forward (one hidden layer), returning the output spikes [T, B, C]."""
    h1, h2 = AuthorsLIF(0.25), AuthorsLIF(0.25)
    outputs = []
    for frame in x:
        s1 = h1(F.linear(frame.reshape(frame.shape[0], -1), model.fc1.weight, model.fc1.bias))
        outputs.append(h2(F.linear(s1, model.fc2.weight, model.fc2.bias)))
    return torch.stack(outputs)


def same_conv(conv: nn.Conv2d, s: torch.Tensor) -> torch.Tensor:
    return F.conv2d(s, conv.weight, conv.bias, padding=1)


def authors_scnn(model: he.SpikingCNN, x: torch.Tensor) -> torch.Tensor:
    """scnn_gesture.py's forward without dropout, returning the output spikes [T, B, C]."""
    lifs = [AuthorsLIF(0.5) for _ in range(7)]
    c0, c1, p1, c2, p2, h1, h2 = lifs
    outputs = []
    for frame in x:
        s = c0(same_conv(model.conv0, frame))
        s = c1(same_conv(model.conv1, s))
        s = p1(F.avg_pool2d(s, 2))
        s = c2(same_conv(model.conv2, s))
        s = p2(F.avg_pool2d(s, 2))
        s = h1(F.linear(s.reshape(s.shape[0], -1), model.fc1.weight, model.fc1.bias))
        outputs.append(h2(F.linear(s, model.fc2.weight, model.fc2.bias)))
    return torch.stack(outputs)


def test_lif_layer_equals_the_authors_recurrence_forward_and_backward():
    gen = torch.Generator().manual_seed(1)
    drive = (torch.rand(12, 4, 50, generator=gen) * 0.8 - 0.1).requires_grad_()
    upstream = torch.randn(12, 4, 50, generator=gen)
    node = he.HeLIFNode(store_u_seq=True)
    spikes = node(drive)
    (grad_ours,) = torch.autograd.grad((spikes * upstream).sum(), drive)

    ref_spikes, ref_mems = authors_layer(drive, lens=0.25)
    (grad_ref,) = torch.autograd.grad((ref_spikes * upstream).sum(), drive)
    assert 0.1 < spikes.mean().item() < 0.9
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(node.u_seq, ref_mems, rtol=0, atol=0)
    torch.testing.assert_close(grad_ours, grad_ref)
    # the reset term is in the graph: detaching it (spikingjelly's detach_reset) changes the gradient
    detached_spikes, _ = authors_layer(drive, lens=0.25, detach_reset=True)
    (grad_detached,) = torch.autograd.grad((detached_spikes * upstream).sum(), drive)
    assert not torch.allclose(grad_ours, grad_detached)


def test_spiking_mlp_equals_the_authors_loop_with_weight_gradients():
    model = boost(small("snn_mlp", seed=2), 3.0)
    x = frames(3)
    labels = torch.tensor([0, 1, 2])
    out = model(x)
    loss = he.mse_rate_loss(out, labels)
    ours = torch.autograd.grad(loss, [model.fc1.weight, model.fc2.weight])

    functional.reset_net(model)
    ref = authors_mlp(model, x)
    ref_loss = F.mse_loss(ref.sum(0) / T, F.one_hot(labels, 3).float())  # the authors' sumspike / time_window
    theirs = torch.autograd.grad(ref_loss, [model.fc1.weight, model.fc2.weight])
    assert 0 < out.mean().item() < 1
    assert torch.equal(out, ref)
    torch.testing.assert_close(loss, ref_loss)
    for g_ours, g_ref in zip(ours, theirs):
        assert g_ours.abs().sum() > 0
        torch.testing.assert_close(g_ours, g_ref)


def test_spiking_cnn_without_dropout_equals_the_authors_loop():
    model = boost(he.make_model("scnn", seed=4, **{**SMALL["scnn"], "dropout": 0.0}), 2.5)
    x = frames(5)
    out = model(x)
    (ours,) = torch.autograd.grad(out.sum(), model.conv0.weight)
    ref = authors_scnn(model, x)
    (theirs,) = torch.autograd.grad(ref.sum(), model.conv0.weight)
    rates = he.input_rates(model, x)
    assert all(r > 0 for r in rates), rates  # every layer receives spikes, so the comparison bites
    assert torch.equal(out, ref)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs)


def test_membrane_exactly_at_threshold_does_not_fire():
    at = torch.full((1, 1, 4), THRESH)  # float32 0.3, the value the threshold is compared in
    above = torch.nextafter(at, torch.ones_like(at))  # the next float32 up
    assert he.HeLIFNode()(at).eq(0).all()
    assert he.HeLIFNode()(above).eq(1).all()
    # spikingjelly's LIFNode fires at the threshold: the convention this neuron departs from
    sj = neuron.LIFNode(tau=1 / (1 - DECAY), decay_input=False, v_threshold=THRESH, v_reset=0.0,
                        surrogate_function=Rectangle(0.5), step_mode="m")
    assert sj(at).eq(1).all()


def test_neuron_reset_and_single_step_mode():
    node = he.HeLIFNode(step_mode="s")
    x = torch.tensor([[0.2, 0.5]])
    assert node(x).tolist() == [[0.0, 1.0]]
    assert node.u[0].tolist() == pytest.approx([0.2, 0.5])
    assert node(x).tolist() == [[0.0, 1.0]]  # u = 0.3 * 0.2 + 0.2 = 0.26 (no spike); 0 + 0.5 after the reset
    assert node.u[0].tolist() == pytest.approx([0.26, 0.5])
    with pytest.raises(ValueError, match="reset_net"):
        node(torch.zeros(3, 2))
    functional.reset_net(node)
    assert node.v == 0.0 and node.u is None
    assert node.lens == 0.25 and node.surrogate_function.strict


# --------------------------------------------------------------------------- every model


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_and_gradient_reaches_the_first_layer(kind):
    model = boost(small(kind, seed=6), BOOST.get(kind, 1.0))
    out = model(frames(7, scale=1.0))
    assert out.shape == (T, B, 3)
    if he.is_spiking(model):
        assert set(out.unique().tolist()) <= {0.0, 1.0}
    he.mse_rate_loss(out, torch.tensor([0, 1, 2])).backward()
    grad = first_weight(model).grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_model_and_outputs(kind):
    state = torch.get_rng_state()
    a, b, c = small(kind, seed=8), small(kind, seed=8), small(kind, seed=9)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left alone
    for name, p in a.state_dict().items():
        assert torch.equal(p, b.state_dict()[name])
    assert not torch.equal(first_weight(a), first_weight(c))
    x = frames(10)
    a.eval(), b.eval()
    assert torch.equal(a(x), b(x))


def test_dropout_is_seeded_by_the_global_generator_in_training_and_off_in_eval():
    model = boost(small("scnn"), BOOST["scnn"])
    x = frames(11)
    runs = []
    for _ in range(2):
        torch.manual_seed(12)
        functional.reset_net(model)
        runs.append(model(x))
    assert torch.equal(runs[0], runs[1])
    model.eval()
    functional.reset_net(model)
    evaluated = model(x)
    functional.reset_net(model)
    assert torch.equal(evaluated, model(x))
    assert not torch.equal(evaluated, runs[0])


@pytest.mark.parametrize("kind", ["snn_mlp", "scnn"])
def test_snn_state_carries_over_unless_reset(kind):
    model = boost(small(kind, seed=6), BOOST[kind]).eval()
    first_lif = next(m for m in model.modules() if isinstance(m, he.HeLIFNode))
    first_lif.store_u_seq = True
    x = frames(14, scale=1.0)
    first, u_first = model(x), first_lif.u_seq
    carried, u_carried = model(x), first_lif.u_seq
    functional.reset_net(model)
    again, u_again = model(x), first_lif.u_seq
    assert torch.equal(first, again) and torch.equal(u_first, u_again)
    assert not torch.equal(first, carried)
    # the leftover membrane decays into the first step: u[0] = decay * V_left + W x[0] + b
    assert not torch.equal(u_first[0], u_carried[0])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "conv_rnn", "conv_lstm"])
def test_rnn_models_keep_no_state_between_calls(kind):
    model = small(kind, seed=15)
    x = frames(16)
    assert torch.equal(model(x), model(x))


def manual_recurrent(model: he.RecurrentMLP, x: torch.Tensor) -> torch.Tensor:
    """The torch RNN/LSTM equations over time, written out, then the readout at every step."""
    rnn = model.recurrent
    seq = list(x.flatten(2))
    for layer in range(rnn.num_layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
        b = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
        h = c = torch.zeros(x.shape[1], rnn.hidden_size)
        outputs = []
        for xt in seq:
            pre = xt @ w_ih.T + h @ w_hh.T + b
            if model.cell == "lstm":
                i, f, g, o = pre.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:
                h = torch.tanh(pre)
            outputs.append(h)
        seq = outputs
    return model.readout(torch.stack(seq))


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_recurrent_mlp_runs_over_time_not_over_the_batch(kind):
    model = small(kind, seed=17)
    x = frames(18)
    out = model(x)
    torch.testing.assert_close(out, manual_recurrent(model, x))
    # each sample's output is independent of the others (the authors' batch_first bug would mix them)
    for b in range(B):
        torch.testing.assert_close(model(x[:, b : b + 1])[:, 0], out[:, b])


def test_conv_rnn_cell_equals_the_authors_cell_on_their_last_quarter_of_weights():
    gen = torch.Generator().manual_seed(19)
    c_in, h = 3, 4
    authors_conv = nn.Conv2d(c_in + h, 4 * h, 3, padding=1)
    x, h_prev = torch.randn(2, c_in, 5, 5, generator=gen), torch.randn(2, h, 5, 5, generator=gen)
    theirs = torch.tanh(authors_conv(torch.cat([x, h_prev], 1))[:, 3 * h :])
    cell = he.ConvRNNCell(c_in, h)
    with torch.no_grad():
        cell.conv.weight.copy_(authors_conv.weight[3 * h :])
        cell.conv.bias.copy_(authors_conv.bias[3 * h :])
    out, state = cell(x, h_prev)
    torch.testing.assert_close(out, theirs)
    assert state is out


def test_conv_lstm_cell_gate_order_is_i_f_o_g():
    gen = torch.Generator().manual_seed(20)
    cell = he.ConvLSTMCell(3, 4)
    x = torch.randn(2, 3, 5, 5, generator=gen)
    h, c = torch.randn(2, 4, 5, 5, generator=gen), torch.randn(2, 4, 5, 5, generator=gen)
    w, bias = cell.conv.weight, cell.conv.bias

    def gate(k):  # the k-th block of 4 output channels
        return F.conv2d(torch.cat([x, h], 1), w[4 * k : 4 * k + 4], bias[4 * k : 4 * k + 4], padding=1)

    c_ref = torch.sigmoid(gate(1)) * c + torch.sigmoid(gate(0)) * torch.tanh(gate(3))
    h_ref = torch.sigmoid(gate(2)) * torch.tanh(c_ref)
    out, (h_new, c_new) = cell(x, (h, c))
    torch.testing.assert_close(c_new, c_ref)
    torch.testing.assert_close(out, h_ref)
    assert h_new is out


def test_submodule_names_follow_the_authors_scripts():
    def keys(kind, dataset):  # parameter owners, e.g. "fc1" for "fc1.weight"
        return {k.rsplit(".", 1)[0] for k in he.paper_model(kind, dataset).state_dict()}

    assert keys("snn_mlp", "nmnist") == {"fc1", "fc2"}
    assert keys("scnn", "gesture") == {"conv0", "conv1", "conv2", "fc1", "fc2"}
    assert keys("rnn", "gesture") == {"rnn", "readout"}
    assert keys("lstm", "nmnist") == {"lstm", "readout"}
    assert keys("conv_lstm", "gesture") == {"conv1.conv", "conv2.conv", "conv3.conv", "fc1", "fc2"}
    assert he.paper_model("conv_lstm", "gesture").conv1.conv.weight.shape == (4 * 64, 2 + 64, 3, 3)


def authors_conv_recurrent(state: dict, x: torch.Tensor, lstm: bool) -> torch.Tensor:
    """convRNN_gesture.py / convLstm_gesture.py on their own weights: cell by cell over time, pooled
    outputs after cells 2 and 3, fc1 and fc2 on the last step only. Returns [B, classes]."""
    seq = list(x)
    for i in (1, 2, 3):
        w, b = state[f"module.conv{i}.conv.weight"], state[f"module.conv{i}.conv.bias"]
        hdim = w.shape[0] // 4
        h = c = torch.zeros(x.shape[1], hdim, *seq[0].shape[2:])
        outputs = []
        for xt in seq:
            cc_i, cc_f, cc_o, cc_g = F.conv2d(torch.cat([xt, h], 1), w, b, padding=1).split(hdim, dim=1)
            if lstm:
                c = torch.sigmoid(cc_f) * c + torch.sigmoid(cc_i) * torch.tanh(cc_g)
                h = torch.sigmoid(cc_o) * torch.tanh(c)
            else:
                h = torch.tanh(cc_g)  # their conv RNN cell: only the last quarter is used
            outputs.append(F.avg_pool2d(h, 2) if i > 1 else h)
        seq = outputs
    hidden = F.linear(seq[-1].flatten(1), state["module.fc1.weight"], state["module.fc1.bias"])
    return F.linear(hidden, state["module.fc2.weight"], state["module.fc2.bias"])


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_conv_recurrent_net_on_the_authors_checkpoint_matches_their_forward(cell):
    gen = torch.Generator().manual_seed(24)
    shapes = {"conv1.conv": (16, 2 + 4), "conv2.conv": (24, 4 + 6), "conv3.conv": (24, 6 + 6)}
    state = {}
    for name, (out_channels, in_channels) in shapes.items():  # always 4 * hidden outputs, as in their cells
        state[f"module.{name}.weight"] = torch.randn(out_channels, in_channels, 3, 3, generator=gen) * 0.3
        state[f"module.{name}.bias"] = torch.randn(out_channels, generator=gen) * 0.1
    for name, (n_out, n_in) in {"fc1": (12, 24), "fc2": (3, 12)}.items():
        state[f"module.{name}.weight"] = torch.randn(n_out, n_in, generator=gen) * 0.3
        state[f"module.{name}.bias"] = torch.randn(n_out, generator=gen) * 0.1
    model = small(f"conv_{cell}")
    model.load_state_dict(he.convert_authors_state_dict(state, model))
    x = frames(25)
    torch.testing.assert_close(he.readout(model(x), "last"), authors_conv_recurrent(state, x, cell == "lstm"))


def test_convert_authors_state_dict_for_the_snn_and_its_errors():
    model = small("snn_mlp")
    state = {f"module.{k}": v.clone() + 1 for k, v in model.state_dict().items()}
    state["lateral1.weight"] = torch.zeros(16, 16)  # declared but unused by their N-MNIST SNN
    reference = small("snn_mlp", seed=1)
    reference.load_state_dict(he.convert_authors_state_dict(state, reference))
    assert torch.equal(reference.fc1.weight, model.fc1.weight + 1)
    with pytest.raises(ValueError, match="does not have"):
        he.convert_authors_state_dict({**state, "fc3.weight": torch.zeros(1)}, model)
    with pytest.raises(ValueError, match="lacks"):
        he.convert_authors_state_dict({"fc1.weight": state["module.fc1.weight"]}, model)
    with pytest.raises(ValueError, match="shape"):
        he.convert_authors_state_dict({**state, "module.fc1.bias": torch.zeros(3)}, model)


# --------------------------------------------------------------------------- readout and losses


def test_losses_readout_and_predictions_by_hand():
    outputs = torch.tensor(
        [
            [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
            [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]],
        ]
    )  # [T=3, B=2, C=3]
    labels = torch.tensor([0, 2])
    # mean over time: sample 0 -> (2/3, 2/3, 0), sample 1 -> (1/3, 1/3, 1); targets (1,0,0), (0,0,1)
    mean_sq = [(2 / 3 - 1) ** 2, (2 / 3) ** 2, 0.0, (1 / 3) ** 2, (1 / 3) ** 2, 0.0]
    assert he.mse_rate_loss(outputs, labels).item() == pytest.approx(sum(mean_sq) / 6)
    # last step: sample 0 -> (0, 1, 0), sample 1 -> (1, 0, 1)
    last_sq = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert he.mse_last_step_loss(outputs, labels).item() == pytest.approx(sum(last_sq) / 6)
    assert he.LOSSES["mean"] is he.mse_rate_loss and he.LOSSES["last"] is he.mse_last_step_loss
    assert he.predict(outputs, "mean")[1].item() == 2 and he.predict(outputs, "mean")[0].item() in (0, 1)
    # sample 0 ties classes 0 and 1 (its label among them: 1/2); sample 1 last step ties 0 and 2
    assert he.readout_accuracy(outputs, labels, "mean") == pytest.approx((0.5 + 1.0) / 2)
    assert he.readout_accuracy(outputs, labels, "last") == pytest.approx((0.0 + 0.5) / 2)
    assert he.tie_fraction(outputs, "mean") == 0.5 and he.tie_fraction(outputs, "last") == 0.5


def test_ties_are_broken_at_random_and_scored_at_chance():
    # a silent SNN: every class ties at zero spikes. argmax would say class 0 for all samples,
    # scoring the share of class 0 (here 1.0); the tie rule scores chance whatever the labels.
    silent, classes = torch.zeros(2, 600, 4), 4
    for label in range(classes):
        labels = torch.full((600,), label)
        assert he.readout_accuracy(silent, labels) == pytest.approx(1 / classes)
    predicted = he.predict(silent, generator=torch.Generator().manual_seed(3))
    shares = torch.bincount(predicted, minlength=classes).float() / 600
    assert torch.all((shares - 1 / classes).abs() < 0.07)
    assert torch.equal(predicted, he.predict(silent, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(he.predict(silent), he.predict(silent))  # reproducible by default
    # the expected accuracy equals the mean accuracy over many random tie-breaks
    counts = torch.randint(0, 2, (1, 400, classes)).float()  # T = 1: counts 0 or 1, many ties
    labels = torch.randint(0, classes, (400,))
    generator = torch.Generator().manual_seed(4)
    sampled = torch.stack([(he.predict(counts, generator=generator) == labels).float().mean() for _ in range(300)])
    assert he.readout_accuracy(counts, labels) == pytest.approx(sampled.mean().item(), abs=0.005)
    # without ties the rule is plain argmax
    distinct = torch.randn(3, 50, classes)
    assert torch.equal(he.predict(distinct), he.readout(distinct).argmax(dim=1))
    assert he.tie_fraction(distinct) == 0.0


def test_loss_and_readout_reject_bad_input():
    outputs = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="mode must be one of"):
        he.readout(outputs, "max")
    with pytest.raises(ValueError, match=r"\[T, B, classes\]"):
        he.readout(outputs[0])
    with pytest.raises(ValueError, match="class indices"):
        he.mse_rate_loss(outputs, torch.zeros(3))
    with pytest.raises(ValueError, match=r"lie in \[0, 4\)"):
        he.mse_rate_loss(outputs, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="shape \\[3\\]"):
        he.readout_accuracy(outputs, torch.zeros(3, 1, dtype=torch.long))


# --------------------------------------------------------------------------- parameter counts


# papers.md section 1.5: parameter counts of the released architectures.
PAPER_PARAMETERS = {
    ("snn_mlp", "nmnist"): 1_189_386,
    ("snn_mlp", "gesture"): 1_054_731,
    ("rnn", "nmnist"): 1_977_354,
    ("rnn", "gesture"): 1_842_699,
    ("lstm", "nmnist"): 7_894_026,
    ("lstm", "gesture"): 7_353_867,
    ("scnn", "gesture"): 2_322_891,
}


@pytest.mark.parametrize(("kind", "dataset"), list(PAPER_PARAMETERS), ids=[f"{k}-{d}" for k, d in PAPER_PARAMETERS])
def test_paper_configurations_have_the_published_parameter_counts(kind, dataset):
    model = he.paper_model(kind, dataset)
    counted = sum(p.numel() for p in model.parameters())
    assert counted == PAPER_PARAMETERS[(kind, dataset)]
    assert he.operation_counts(model, 1, [1.0] * len(model.synaptic_layers()))["params"] == counted


def test_paper_parameter_counts_from_the_closed_forms():
    def snn(n_in, h):
        return n_in * h + h

    def rnn(n_in, h):
        return n_in * h + h * h + 2 * h

    def lstm(n_in, h):
        return 4 * (n_in * h + h * h + 2 * h)

    for n_in, c, dataset in [(34 * 34 * 2, 10, "nmnist"), (32 * 32 * 2, 11, "gesture")]:
        assert snn(n_in, 512) + snn(512, c) == PAPER_PARAMETERS[("snn_mlp", dataset)]
        assert rnn(n_in, 512) + rnn(512, 512) + snn(512, c) == PAPER_PARAMETERS[("rnn", dataset)]
        assert lstm(n_in, 512) + lstm(512, 512) + snn(512, c) == PAPER_PARAMETERS[("lstm", dataset)]
    convs = [9 * 2 * 64 + 64, 9 * 64 * 128 + 128, 9 * 128 * 128 + 128]
    assert sum(convs) + snn(8 * 8 * 128, 256) + snn(256, 11) == PAPER_PARAMETERS[("scnn", "gesture")]
    # the conv RNN / LSTM of this module (see the module docstring)
    cells = [9 * (2 + 64) * 64 + 64, 9 * (64 + 128) * 128 + 128, 9 * (128 + 128) * 128 + 128]
    readout = snn(8 * 8 * 128, 256) + snn(256, 11)
    assert sum(p.numel() for p in he.paper_model("conv_rnn", "gesture").parameters()) == sum(cells) + readout
    assert sum(p.numel() for p in he.paper_model("conv_lstm", "gesture").parameters()) == 4 * sum(cells) + readout


@pytest.mark.parametrize(("n_in", "h"), [(1, 1), (7, 5), (20, 3)])
def test_layer_closed_forms_match_torch_modules(n_in, h):
    def numel(module):
        return sum(p.numel() for p in module.parameters())

    assert he.linear_parameters(n_in, h) == numel(nn.Linear(n_in, h)) == n_in * h + h
    assert he.rnn_layer_parameters(n_in, h) == numel(nn.RNN(n_in, h)) == n_in * h + h * h + 2 * h
    assert he.lstm_layer_parameters(n_in, h) == numel(nn.LSTM(n_in, h)) == 4 * (n_in * h + h * h + 2 * h)
    for k in (1, 3, 5):
        assert he.conv_parameters(n_in, h, k) == numel(nn.Conv2d(n_in, h, k))
        assert 4 * he.conv_parameters(n_in + h, h, k) == numel(he.ConvLSTMCell(n_in, h, k))
        assert he.conv_parameters(n_in + h, h, k) == numel(he.ConvRNNCell(n_in, h, k))


@pytest.mark.parametrize("kind", KINDS)
def test_small_model_closed_form_parameters_equal_the_counted_ones(kind):
    model = small(kind)
    layers = model.synaptic_layers()
    counts = he.operation_counts(model, 3, [0.5] * len(layers))
    assert counts["params"] == sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- operation counts


@pytest.mark.parametrize(("k", "height", "width"), [(1, 4, 4), (3, 5, 7), (3, 1, 6), (5, 8, 6)])
def test_conv_ops_counts_the_non_padding_taps(k, height, width):
    ones = torch.ones(1, 1, height, width)
    taps = F.conv2d(ones, torch.ones(1, 1, k, k), padding=k // 2).sum().item()
    assert he.conv_ops(2, 3, k, height, width) == 2 * 3 * taps


def test_rnn_operation_counts_by_hand():
    n_in, h, c, steps = 2 * 8 * 8, 10, 3, 7
    rnn = he.operation_counts(small("rnn"), steps)
    assert rnn == {"params": rnn["params"], "MACs": steps * (n_in * h + h * h + h * h + h * h) + h * c, "ACs": 0}
    lstm = he.operation_counts(small("lstm"), steps)
    assert lstm["MACs"] == steps * 4 * (n_in * h + h * h + h * h + h * h) + h * c
    conv = he.operation_counts(small("conv_lstm"), steps)
    # cells at 8x8, 8x8, 4x4 (3x3 'same' convs: 22 valid taps per axis on 8, 10 on 4); readout once
    cells = 4 * (6 * 4 * 22 * 22 + 10 * 6 * 22 * 22 + 12 * 6 * 10 * 10)
    assert conv["MACs"] == steps * cells + 6 * 2 * 2 * 12 + 12 * 3


def test_snn_synaptic_operations_equal_nonzero_inputs_times_fan_out():
    model = boost(small("snn_mlp", seed=21), 3.0)
    x = (frames(22) > 1.2).float()  # binary frames
    rates = he.input_rates(model, x)
    with torch.no_grad():
        hidden = model.lif1(model.fc1(x.flatten(2)))
    functional.reset_net(model)
    expected = (x.count_nonzero().item() * 16 + hidden.count_nonzero().item() * 3) / B
    assert hidden.count_nonzero() > 0
    binary = he.operation_counts(model, T, rates, binary_input=True)
    assert binary["ACs"] == pytest.approx(expected) and binary["MACs"] == 0
    real = he.operation_counts(model, T, rates)
    assert real["MACs"] == pytest.approx(x.count_nonzero().item() * 16 / B)
    assert real["MACs"] + real["ACs"] == pytest.approx(expected)


def test_input_rates_leave_the_model_as_it_was():
    model = small("scnn").train()
    rates = he.input_rates(model, frames(23))
    assert len(rates) == len(model.synaptic_layers()) == 5 and rates[0] == 1.0
    assert model.training
    assert all(m.v == 0.0 for m in model.modules() if isinstance(m, he.HeLIFNode))
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_complexity_table():
    snn, rnn = small("snn_mlp"), small("rnn")
    table = he.complexity_table({"snn": snn, "rnn": rnn}, 5, {"snn": [0.5, 0.1]})
    assert list(table.columns) == ["model", "family", "params", "MACs", "ACs"]
    assert table["family"].tolist() == ["SNN", "RNN"]
    snn_row = table.iloc[0]
    assert snn_row["MACs"] == pytest.approx(5 * 0.5 * 128 * 16)
    assert snn_row["ACs"] == pytest.approx(5 * 0.1 * 16 * 3)
    assert table.iloc[1]["MACs"] == he.operation_counts(rnn, 5)["MACs"]
    with pytest.raises(ValueError, match="input_rates"):
        he.complexity_table({"snn": snn}, 5)
    with pytest.raises(ValueError, match=r"rate .* must be finite and lie in \[0.0, 1.0\]"):
        he.operation_counts(snn, 5, [0.5, 1.5])


# --------------------------------------------------------------------------- bad input


def test_models_reject_bad_configuration_and_input():
    with pytest.raises(ValueError, match="unknown model kind"):
        he.make_model("gru")
    with pytest.raises(ValueError, match="not on 'nmnist'"):
        he.paper_model("scnn", "nmnist")
    with pytest.raises(ValueError, match="odd"):
        he.make_model("scnn", kernel_size=2)
    with pytest.raises(ValueError, match="divisible by 4"):
        he.make_model("conv_rnn", in_shape=(2, 10, 10))
    with pytest.raises(ValueError, match="cell must be"):
        he.RecurrentMLP(cell="gru")
    with pytest.raises(ValueError, match="dropout"):
        he.make_model("scnn", dropout=1.0)
    with pytest.raises(ValueError, match="decay"):
        he.HeLIFNode(decay=1.5)
    with pytest.raises(ValueError, match="lens"):
        he.HeLIFNode(lens=0.0)
    with pytest.raises(TypeError, match="hidden"):
        he.SpikingMLP(hidden=512)
    with pytest.raises(TypeError, match="MODEL_KINDS"):
        he.operation_counts(nn.Linear(2, 2), 3)
    for kind in KINDS:
        with pytest.raises(ValueError, match="time-first"):
            small(kind)(frames(0).movedim(0, 1)[:, :, :, :4])


# --------------------------------------------------------------------------- input frames


def random_events(seed: int, n: int = 400, duration: int = 12_000):
    """Random events on a 10 x 8 sensor (W x H) over [0, duration) µs."""
    from snnlib.data import make_events

    rng = torch.Generator().manual_seed(seed)
    x, y = torch.randint(0, 10, (n,), generator=rng), torch.randint(0, 8, (n,), generator=rng)
    t, p = torch.randint(0, duration, (n,), generator=rng), torch.randint(0, 2, (n,), generator=rng)
    return make_events(x.numpy(), y.numpy(), t.numpy(), p.numpy(), (10, 8, 2))


def test_coarsen_time_equals_binning_the_events_into_fewer_bins():
    from snnlib.data import to_frames

    events = random_events(0)
    fine = torch.from_numpy(to_frames(events, (10, 8, 2), n_time_bins=12, start_us=0, duration_us=12_000))
    for n in (1, 3, 4, 12):
        direct = to_frames(events, (10, 8, 2), n_time_bins=n, start_us=0, duration_us=12_000)
        torch.testing.assert_close(he.coarsen_time(fine, n), torch.from_numpy(direct))
    batch = torch.stack([fine, 2 * fine])  # [B, T, ...]: time on axis 1
    torch.testing.assert_close(he.coarsen_time(batch, 4, time_axis=1)[1], 2 * he.coarsen_time(fine, 4))
    with pytest.raises(ValueError, match="multiple of 5"):
        he.coarsen_time(fine, 5)


def test_pool_frames_equals_events_on_a_sensor_with_larger_pixels():
    from snnlib.data import make_events, to_frames

    events = random_events(1)
    frames = torch.from_numpy(to_frames(events, (10, 8, 2), n_time_bins=3, start_us=0, duration_us=12_000))
    for crop in (0, 1):
        x, y = events["x"], events["y"]
        inside = events[(x >= crop) & (x < 10 - crop) & (y >= crop) & (y < 8 - crop)]
        sensor = ((10 - 2 * crop) // 2, (8 - 2 * crop) // 2, 2)
        big = make_events((inside["x"] - crop) // 2, (inside["y"] - crop) // 2, inside["t"], inside["p"], sensor)
        direct = to_frames(big, sensor, n_time_bins=3, start_us=0, duration_us=12_000)
        torch.testing.assert_close(he.pool_frames(frames, 2, crop=crop), torch.from_numpy(direct))
    with pytest.raises(ValueError, match="multiples of 3"):
        he.pool_frames(frames, 3)


# --------------------------------------------------------------------------- the work's configuration


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_every_profile_builds_the_papers_conv_structure(profile):
    # the authors' SCNN: a conv at full resolution, then two conv + pool stages (papers.md 1.3)
    from snnlib.config import load_work_config

    cfg = load_work_config("he2020", profile)
    assert len(cfg["conv_channels"]) == 3
    model = he.make_model("scnn", in_shape=(2, 32 // cfg["conv_pool"], 32 // cfg["conv_pool"]),
                          channels=cfg["conv_channels"], hidden=cfg["conv_hidden"])
    names = [name for name, _ in model.named_children()]
    assert [n for n in names if n.startswith("conv") and n[4:].isdigit()] == ["conv0", "conv1", "conv2"]
    assert [n for n in names if n.startswith("pool") and n[4:].isdigit()] == ["pool1", "pool2"]
    for role in ("converted", "captured"):  # the resolution claims drop from the finest to one bin
        assert min(cfg["time_steps"][role]) == 1 < max(cfg["time_steps"][role])


def test_he2020_claims_are_declared_with_their_reasons():
    from snnlib.claims import COMPARATIVE, load_specs

    specs = load_specs("he2020")
    assert len(specs) >= 10
    for spec in specs.values():
        assert spec.why, f"claim {spec.id} says not why its margin was chosen"
        if spec.test in COMPARATIVE:
            assert spec.min_seeds >= 5
            assert any(p.id == "arms_above_chance" or p.id == "finest_resolution_learned"
                       for p in spec.preconditions), spec.id
    resolution = [s for s in specs.values() if s.id.startswith("resolution_matters")]
    assert resolution and all({"finest_resolution_learned", "converged"} <= {p.id for p in s.preconditions}
                              for s in resolution)
