"""The network of the VAE family (``helpers.models.network``): one invariance set builds
the same network as the public classes, and the loss's class-balance term."""

import math

import pytest
import torch

from helpers.models import JRVAE, RVAE, VAE
from helpers.models.network import InvariantNet, class_marginal_kl, class_posteriors
from helpers.simulate.objects import card_glyphs, rotated_objects

SHAPE = (28, 28)


def _same_network(net: InvariantNet, model) -> None:
    """``net`` and ``model.module`` have the same parameters (names, shapes, values) and give
    the same loss and posterior on the same batch."""
    mine, theirs = net.state_dict(), model.module.state_dict()
    assert list(mine) == list(theirs)
    for name, value in theirs.items():
        torch.testing.assert_close(mine[name], value, rtol=0, atol=0, msg=name)
    x = torch.as_tensor(rotated_objects(8, seed=2).images)
    batch = net.training_inputs(x)
    for m in (net, model.module):
        m.train()
    top = model.top_hypotheses
    a = net.loss(batch, None, torch.Generator().manual_seed(0), 1.0, None, top)
    b = model.module.loss(batch, None, torch.Generator().manual_seed(0), 1.0, None, top)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    assert a[1] == b[1]
    for key, value in model.module.infer(x, None).items():
        torch.testing.assert_close(net.infer(x, None)[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("invariances, model", [
    ({"rotation", "translation"}, lambda: RVAE(SHAPE, seed=3, device="cpu")),
    (("rotation",), lambda: RVAE(SHAPE, translation=False, seed=3, device="cpu")),
    (["scale", "translation", "rotation"],
     lambda: RVAE(SHAPE, scale=True, symmetry=2, seed=3, device="cpu")),
    (set(), lambda: VAE(SHAPE, seed=3, device="cpu")),
])
def test_an_invariance_set_builds_the_network_of_the_public_class(invariances, model):
    model = model()
    cfg = model.config
    pose = {k: cfg[k] for k in ("n_rotations", "symmetry") if k in cfg}
    torch.manual_seed(3)
    net = InvariantNet(SHAPE, 2, invariances, **pose)
    assert net.invariances == frozenset(invariances)
    _same_network(net, model)


def test_an_invariance_set_with_classes_builds_the_jrvae_network():
    model = JRVAE(SHAPE, 2, n_classes=3, seed=4, device="cpu")
    torch.manual_seed(4)
    net = InvariantNet(SHAPE, 2, {"rotation", "translation"}, n_classes=3, class_balance=10.0)
    _same_network(net, model)


def test_an_unknown_invariance_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="rotation.*translation.*scale"):
        InvariantNet(SHAPE, 2, {"rotation", "shear"})
    with pytest.raises(ValueError, match=r"such as \{'rotation'\}"):
        InvariantNet(SHAPE, 2, "rotation")  # a string is not a set of names


def test_class_marginal_kl_measures_how_unevenly_a_batch_uses_the_classes():
    def kl(q, classes, n_classes):
        return class_marginal_kl(class_posteriors(q, classes, n_classes))

    classes = torch.tensor([[0, 1], [2, 3]])
    assert kl(torch.full((2, 2), 0.5), classes, 4).item() == pytest.approx(
        0.0, abs=1e-6)  # each class a quarter of the batch
    one = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert kl(one, classes, 4).item() == pytest.approx(
        math.log(2), rel=1e-6)  # classes 0 and 2, half each
    same = torch.tensor([[0, 1], [0, 2]])
    assert kl(one, same, 4).item() == pytest.approx(math.log(4), rel=1e-6)
    # its gradient moves posterior mass from the crowded class to the empty one
    q = torch.tensor([[0.9, 0.1], [0.9, 0.1]], requires_grad=True)
    kl(q, torch.tensor([[0, 1], [0, 1]]), 2).backward()
    assert q.grad[0, 0] > 0 > q.grad[0, 1]


def test_jrvae_loss_adds_the_weighted_class_balance_term():
    g = card_glyphs(64, difficulty=0, seed=0)
    m = JRVAE(SHAPE, latent_dim=2, n_classes=4, seed=0, device="cpu")
    assert m.config["class_balance"] == 10.0 and "class_balance" not in RVAE(SHAPE).config
    for bad in (dict(class_balance=-1.0), dict(class_balance=float("nan"))):
        with pytest.raises(ValueError, match="class_balance"):
            JRVAE(SHAPE, **bad)
    with pytest.raises(TypeError, match="use JRVAE"):
        RVAE(SHAPE, class_balance=1.0)
    net = m.module.train()
    batch = net.batch(net.training_inputs(torch.as_tensor(g.images)), torch.arange(32))
    out = {}
    for weight in (0.0, 5.0):
        net.class_balance = weight
        out[weight] = net.loss(batch, None, torch.Generator().manual_seed(0), 1.0, None, 4)
    kl = out[5.0][1]["class_balance"]
    assert "class_balance" not in out[0.0][1] and 0 < kl <= math.log(4)
    assert out[5.0][0].item() == pytest.approx(out[0.0][0].item() + 5.0 * kl, rel=1e-5)
