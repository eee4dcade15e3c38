"""The hop-rate ensemble and the steering controllers, tested on what they are for: the exact
likelihood, recovering a known rate map from simulated dwells, and reaching a goal."""

import numpy as np
import pytest
import torch

from helpers.analysis.scores import r2_score
from helpers.models import GreedySteering, RandomBeam, RateEnsemble, steering_trials
from helpers.models.base import NotFittedError
from helpers.models.rates import RatePrediction, _nll, dwell_log_likelihood, spread_inflation
from helpers.models.steering import offset_grid
from helpers.models.training import History
from helpers.simulate import PEAK_OFFSET, SiHopRates, bond_directions, si_transition_experiment


@pytest.fixture(scope="module")
def fitted():
    exp = si_transition_experiment(2500, dwell_s=0.5, seed=11)
    model = RateEnsemble(n_members=4, seed=0, device="cpu")
    history = model.fit(exp.local_offsets, exp.dwell_s, exp.neighbour, epochs=80,
                        batch_size=512, progress=False)
    return model, history


def test_likelihood_is_a_distribution_over_outcomes():
    rates = np.array([[0.3, 1.2, 0.05], [2.0, 0.02, 0.02]])
    for tau in (0.1, 0.5, 3.0):
        total = sum(np.exp(dwell_log_likelihood(rates, tau, np.full(2, k)))
                    for k in (-1, 0, 1, 2))
        assert np.allclose(total, 1.0)
    # no hop is the survival term exp(-Lambda tau)
    assert np.allclose(dwell_log_likelihood(rates, 0.5, np.array([-1, -1])),
                       -rates.sum(1) * 0.5)


def test_training_loss_is_the_exact_likelihood():
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.01, 3.0, (50, 3))
    tau = rng.uniform(0.1, 2.0, 50)
    k = rng.integers(-1, 3, 50)
    torch_nll = _nll(torch.log(torch.as_tensor(rates))[None], torch.as_tensor(tau),
                     torch.as_tensor(k))[0].numpy()
    assert np.allclose(torch_nll, -dwell_log_likelihood(rates, tau, k), rtol=1e-6, atol=1e-9)


def test_recovers_the_true_rate_map(fitted):
    model, history = fitted
    assert isinstance(history, History) and history.epochs_run == 80
    assert history.loss[-1] < history.loss[0]
    grid = offset_grid(1.2, 0.05)
    truth = SiHopRates()(grid)
    pred = model.predict(grid)
    assert pred.rates.shape == pred.lower.shape == (len(grid), 3)
    assert pred.members.shape == (4, len(grid), 3)
    for k in range(3):
        assert r2_score(truth[:, k], pred.rates[:, k]) > 0.9
    assert (pred.lower <= pred.upper).all() and (pred.log_sd > 0).all()
    # the peak is found where it is: 0.85 A toward each neighbour
    for k, u in enumerate(bond_directions()):
        assert np.linalg.norm(grid[pred.rates[:, k].argmax()] - PEAK_OFFSET * u) < 0.2


def test_uncertainty_is_larger_where_there_are_no_data(fitted):
    model, _ = fitted
    inside = model.predict(offset_grid(1.2, 0.1)).log_sd.mean()
    outside = model.predict(np.array([[4.0, 0.0], [0.0, -4.5], [-3.5, 3.5]])).log_sd.mean()
    assert outside > 2 * inside


def test_save_load_round_trip(fitted, tmp_path):
    model, _ = fitted
    path = model.save(tmp_path / "rates.pt")
    back = RateEnsemble.load(path, device="cpu")
    x = offset_grid(1.0, 0.25)
    assert np.allclose(back.predict(x).rates, model.predict(x).rates)


def test_same_seed_same_fit():
    exp = si_transition_experiment(300, seed=2)
    preds = []
    for _ in range(2):
        m = RateEnsemble(n_members=2, hidden=8, seed=4, device="cpu")
        m.fit(exp.local_offsets, exp.dwell_s, exp.neighbour, epochs=3, progress=False)
        preds.append(m.predict(np.zeros((1, 2))).rates)
    assert np.array_equal(preds[0], preds[1])


def _prediction(log_mean, log_sd):
    log_mean, log_sd = np.asarray(log_mean, float), np.asarray(log_sd, float)
    return RatePrediction(rates=np.exp(log_mean), lower=np.exp(log_mean - log_sd),
                          upper=np.exp(log_mean + log_sd), log_mean=log_mean, log_sd=log_sd,
                          members=np.exp(log_mean)[None], level=0.9)


def test_spread_inflation_widens_only_when_independent_fits_disagree():
    sd = np.full((4, 3), 0.1)
    mean = np.zeros((4, 3))
    # differences of 0.5 against a combined spread sqrt(0.02): factor 0.5 / sqrt(0.02)
    far = spread_inflation(_prediction(mean, sd), _prediction(mean + 0.5, sd))
    assert np.isclose(far, 0.5 / np.sqrt(0.02))
    # agreement closer than the spreads allow never narrows the band
    assert spread_inflation(_prediction(mean, sd), _prediction(mean + 0.01, sd)) == 1.0
    with pytest.raises(ValueError, match="same offsets"):
        spread_inflation(_prediction(mean, sd), _prediction(mean[:2], sd[:2]))


def test_inflation_widens_the_band_by_its_factor_in_log_rate(fitted):
    model, _ = fitted
    x = np.array([[0.5, 0.3], [-0.2, 0.9]])
    plain, wide = model.predict(x), model.predict(x, inflation=1.5)
    assert np.allclose(np.log(wide.upper) - wide.log_mean,
                       1.5 * (np.log(plain.upper) - plain.log_mean))
    assert np.allclose(wide.rates, plain.rates)
    with pytest.raises(ValueError, match="inflation"):
        model.predict(x, inflation=0.5)


def test_bad_input_and_unfitted_use_are_named():
    model = RateEnsemble(n_members=2, device="cpu")
    with pytest.raises(NotFittedError):
        model.predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="neighbour"):
        model.fit(np.zeros((3, 2)), 0.5, np.array([0, 5, -1]), progress=False)
    with pytest.raises(ValueError, match="no dwell ended in a hop"):
        model.fit(np.zeros((3, 2)), 0.5, np.array([-1, -1, -1]), progress=False)
    with pytest.raises(ValueError, match="trailing shape"):
        model.fit(np.zeros((3, 3)), 0.5, np.array([0, 1, -1]), progress=False)
    with pytest.raises(ValueError, match="n_members"):
        RateEnsemble(n_members=1)
    with pytest.raises(ValueError, match="symmetry"):
        RateEnsemble(symmetry="c6")


def test_greedy_controller_reaches_the_goal_with_the_true_rates():
    truth = SiHopRates()
    greedy = GreedySteering(truth)
    # it aims where the true rate toward each neighbour peaks
    assert np.allclose(greedy.best_offsets, PEAK_OFFSET * bond_directions(), atol=0.06)
    result = steering_trials(greedy, 40, hops=5, budget_s=10.0, rates=truth, seed=1)
    assert result.success_rate >= 0.9
    for episode in result.episodes:
        if episode.success:
            assert (episode.path[-1] == episode.goal).all()
    baseline = steering_trials(RandomBeam(seed=1), 40, hops=5, budget_s=10.0, rates=truth,
                               seed=1)
    assert baseline.success_rate < 0.2


def test_greedy_controller_on_the_learned_rates_reaches_the_goal(fitted):
    model, _ = fitted
    result = steering_trials(GreedySteering(model), 30, hops=5, budget_s=10.0, seed=2)
    assert result.success_rate >= 0.9
