"""Differentially private SGD: per-example gradients with `vmap(grad)`, clipped, plus noise.

What it shows: `vmap` of `grad` turns a loss written for *one* example into a batch of
per-example gradients (one pytree whose leaves gain a leading batch axis) in a single compiled
step, which is what DP-SGD (Abadi et al. 2016) needs. Each example's gradient is clipped to
global norm at most C, the clipped gradients are summed, Gaussian noise of standard deviation
sigma * C is added (keys split per parameter from a per-step key) and the sum is divided by
the batch size. No single example can then move the model by more than C, and the noise hides
whether it was there at all.

The data are scikit-learn's 8x8 digits (as `digits.py`). The same jitted step, called with
clip norm = inf and sigma = 0 (Python floats are arguments, so it is not traced again), trains
a non-private baseline for comparison. The privacy spent is estimated with the Renyi-DP
accountant of the sampled Gaussian mechanism (Mironov, Talwar and Zhang 2019, integer orders),
which assumes Poisson sampling of each batch; the batches here are drawn by shuffling, as
most DP-SGD implementations do, so the epsilon is the usual approximation.

Usage:
    python examples/dp_sgd.py                         # 600 steps, private and baseline
    python examples/dp_sgd.py --noise 2.0 --clip 0.5  # more privacy
    python examples/dp_sgd.py --quick                 # for the tests
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
from _common import (
    StepTimer,
    accuracy,
    make_parser,
    minibatches,
    parse_args,
    plot_curves,
    progress,
    report_plot,
    shuffled_split,
)
from digits import N_TEST, load_data

import fnbrrr as jax
import fnbrrr.numpy as jnp
from fnbrrr import nn, optim, random
from fnbrrr.tree_util import tree_leaves, tree_structure, tree_unflatten

BATCH_SIZE = 64
DELTA = 1e-5


def make_dp_step(model: nn.Layer, optimizer: optim.GradientTransformation):
    """A jitted DP-SGD step `(params, opt_state, x, y, key, clip_norm, noise_std) ->
    (params, opt_state, loss, fraction_clipped)`; `noise_std` is sigma * clip_norm."""

    def example_loss(params, x, y):
        """The loss of one example: x of shape (64,), y a scalar label."""
        logits = model.apply(params, x[None, :])
        return nn.softmax_cross_entropy_with_integer_labels(logits, y[None])[0]

    per_example_grads = jax.vmap(jax.value_and_grad(example_loss), in_axes=(None, 0, 0))

    @jax.jit
    def dp_step(params, opt_state, x, y, key, clip_norm, noise_std):
        losses, grads = per_example_grads(params, x, y)  # every leaf: (batch,) + leaf shape
        leaves = tree_leaves(grads)
        norms = jnp.sqrt(sum(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in leaves))
        factors = jnp.minimum(1.0, clip_norm / jnp.maximum(norms, 1e-12))
        keys = random.split(key, len(leaves))
        noisy = [
            (jnp.tensordot(factors, g, axes=1)
             + noise_std * random.normal(k, g.shape[1:])) / x.shape[0]
            for g, k in zip(leaves, keys)
        ]
        private_grads = tree_unflatten(tree_structure(grads), noisy)
        updates, opt_state = optimizer.update(private_grads, opt_state, params)
        return (optim.apply_updates(params, updates), opt_state, losses.mean(),
                jnp.mean(factors < 1.0))

    return dp_step


def rdp_epsilon(sampling_rate: float, noise_multiplier: float, steps: int,
                delta: float = DELTA) -> float:
    """(epsilon, delta)-DP spent by `steps` sampled-Gaussian steps, via Renyi DP.

    For integer orders a, the RDP of one step with sampling rate q and noise sigma is
    `log(sum_k C(a,k) (1-q)^(a-k) q^k exp((k^2 - k) / (2 sigma^2))) / (a - 1)`; it adds up over
    steps and converts to `eps = min_a (steps * rdp(a) + log(1/delta) / (a - 1))`.
    """
    if noise_multiplier <= 0:
        return math.inf
    q, best = sampling_rate, math.inf
    for order in range(2, 256):
        terms = [math.lgamma(order + 1) - math.lgamma(k + 1) - math.lgamma(order - k + 1)
                 + (order - k) * math.log1p(-q) + k * math.log(q)
                 + (k * k - k) / (2 * noise_multiplier**2) for k in range(order + 1)]
        top = max(terms)
        log_a = top + math.log(sum(math.exp(t - top) for t in terms))
        best = min(best, steps * log_a / (order - 1) + math.log(1 / delta) / (order - 1))
    return best


def train(name: str, dp_step, params, optimizer, x, y, key, steps: int, clip_norm: float,
          noise_multiplier: float, disable_progress: bool):
    """Run `steps` steps of `dp_step`; returns (params, losses, timer, mean fraction clipped)."""
    opt_state = optimizer.init(params)
    batch_key, noise_key = random.split(key)
    batches = minibatches(batch_key, len(x), BATCH_SIZE)
    losses, clipped, timer = [], [], StepTimer()
    noise_std = noise_multiplier * clip_norm if noise_multiplier else 0.0  # not inf * 0
    bar = progress(steps, name, disable=disable_progress)
    for step in bar:
        idx = next(batches)
        with timer:
            params, opt_state, loss, frac = dp_step(params, opt_state, x[idx], y[idx],
                                                    random.fold_in(noise_key, step), clip_norm,
                                                    noise_std)
        losses.append(float(loss))
        clipped.append(float(frac))
        bar.set_postfix_str(f"loss {losses[-1]:.4f}", refresh=False)
    bar.close()
    return params, losses, timer, float(np.mean(clipped))


def main(argv: list[str] | None = None) -> dict:
    """Train a private and a non-private MLP on the digits; returns accuracies, epsilon and
    the loss histories."""
    parser = make_parser(__doc__, steps=600, quick_steps=40)
    parser.add_argument("--clip", type=float, default=1.0, help="per-example clip norm C")
    parser.add_argument("--noise", type=float, default=1.1,
                        help="noise multiplier sigma (noise std = sigma * C)")
    parser.add_argument("--lr", type=float, default=0.1, help="SGD learning rate")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the non-private baseline")
    args = parse_args(parser, argv)

    x, y = load_data()
    key = random.PRNGKey(args.seed)
    split_key, init_key, train_key = random.split(key, 3)
    train_idx, test_idx = shuffled_split(split_key, len(x), N_TEST)
    x_train, y_train, x_test, y_test = x[train_idx], y[train_idx], x[test_idx], y[test_idx]

    model = nn.MLP([64, 10], activation=nn.tanh)
    _, params0 = model.init(init_key, (-1, x.shape[1]))
    optimizer = optim.sgd(args.lr, momentum=0.9)
    dp_step = make_dp_step(model, optimizer)
    predict = model.apply  # eager: one pass over 360 digits does not need a compiled program

    runs = {"DP-SGD": (args.clip, args.noise)}
    if not args.no_baseline:
        runs["non-private SGD"] = (math.inf, 0.0)  # nothing clipped, no noise
    results = {}
    for name, (clip_norm, noise_multiplier) in runs.items():
        params, losses, timer, clipped = train(
            name, dp_step, params0, optimizer, x_train, y_train, train_key, args.steps,
            clip_norm, noise_multiplier, args.no_progress)
        test_accuracy = accuracy(lambda xb, p=params: predict(p, xb), x_test, y_test)
        results[name] = {"test_accuracy": test_accuracy, "losses": losses,
                         "ms_per_step": timer.median_ms, "fraction_clipped": clipped}

    epsilon = rdp_epsilon(BATCH_SIZE / len(x_train), args.noise, args.steps)
    plot = plot_curves(os.path.join(args.out, "dp_sgd_loss.png"),
                       {name: (range(1, len(r["losses"]) + 1), r["losses"])
                        for name, r in results.items()},
                       title=f"digits MLP: DP-SGD (C = {args.clip}, sigma = {args.noise}, "
                             f"eps = {epsilon:.2f}) vs SGD", log_y=True, smooth_weight=0.9)
    private = results["DP-SGD"]
    line = (f"dp_sgd: DP-SGD test accuracy {100 * private['test_accuracy']:.1f}% at "
            f"epsilon = {epsilon:.2f}, delta = {DELTA:g} (C = {args.clip}, sigma = {args.noise}, "
            f"{args.steps} steps, {100 * private['fraction_clipped']:.0f}% of gradients clipped, "
            f"{private['ms_per_step']:.2f} ms/step)")
    if "non-private SGD" in results:
        line += (f"; non-private SGD {100 * results['non-private SGD']['test_accuracy']:.1f}%")
    print(line)
    report_plot(plot)
    return {"results": results, "epsilon": epsilon, "plot": plot}


if __name__ == "__main__":
    main(sys.argv[1:])
