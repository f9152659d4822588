"""A multi-layer perceptron learns scikit-learn's 8x8 handwritten digits (the fast example).

What it shows, in the fewest lines: a model as an `(init, apply)` pair (`nn.MLP`), parameters
and optimiser state as pytrees, one jitted training step that computes the loss and its
gradient (`value_and_grad`) and applies an optax-style update (`optim.adam` with a cosine
schedule), fed its own outputs back at every step. The 1,797 digits of
`sklearn.datasets.load_digits` are shuffled with a key and split 80/20; the script prints the
test accuracy (chance is 10%) and writes the loss curve to `examples/out/digits_loss.png`.

Usage:
    python examples/digits.py                 # 600 steps, a few seconds after compilation
    python examples/digits.py --quick         # 80 steps, for the tests
    python examples/digits.py --seed 3 --steps 1000
"""

from __future__ import annotations

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

import fnbrrr as jax
from fnbrrr import nn, optim, random

BATCH_SIZE = 64
N_TEST = 360


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits as float32 pixels in [0, 1], shape (1797, 64), and int32 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int32)


def make_train_step(model: nn.Layer):
    """A jitted step `(params, opt_state, x, y, learning_rate) -> (params, opt_state, loss)`.

    The learning rate is an argument (a Python float: new values do not retrace) rather than a
    schedule baked into the program, so one compiled step serves any schedule and any number
    of steps, and `--quick` runs reuse the compiled code that a full run left in fnbrrr's disk
    cache (as optax's `inject_hyperparams` does).
    """

    def loss_fn(params, x, y):
        logits = model.apply(params, x)
        return nn.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def train_step(params, opt_state, x, y, learning_rate):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optim.adam(learning_rate).update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    return train_step


def main(argv: list[str] | None = None) -> dict:
    """Train and evaluate; returns `{"test_accuracy", "losses", "ms_per_step", "plot"}`."""
    parser = make_parser(__doc__, steps=600, quick_steps=80)
    parser.add_argument("--lr", type=float, default=1e-2, help="peak learning rate")
    args = parse_args(parser, argv)

    x, y = load_data()
    key = random.PRNGKey(args.seed)
    split_key, init_key, batch_key = random.split(key, 3)
    train_idx, test_idx = shuffled_split(split_key, len(x), N_TEST)
    x_train, y_train, x_test, y_test = x[train_idx], y[train_idx], x[test_idx], y[test_idx]

    model = nn.MLP([128, 64, 10], activation=nn.relu)
    _, params = model.init(init_key, (-1, x.shape[1]))
    schedule = optim.cosine_decay_schedule(args.lr, args.steps, alpha=0.05)
    learning_rates = np.asarray(schedule(np.arange(args.steps)), np.float64)
    opt_state = optim.adam(args.lr).init(params)
    train_step = make_train_step(model)
    predict = model.apply  # eager: one pass over 360 digits does not need a compiled program

    losses, timer = [], StepTimer()
    batches = minibatches(batch_key, len(x_train), BATCH_SIZE)
    bar = progress(args.steps, "digits MLP", disable=args.no_progress)
    for step in bar:
        idx = next(batches)
        with timer:
            params, opt_state, loss = train_step(params, opt_state, x_train[idx], y_train[idx],
                                                 float(learning_rates[step]))
        losses.append(float(loss))
        bar.set_postfix_str(f"loss {losses[-1]:.4f}", refresh=False)
    bar.close()

    test_accuracy = accuracy(lambda xb: predict(params, xb), x_test, y_test)
    plot = plot_curves(os.path.join(args.out, "digits_loss.png"),
                       {"training loss (batch)": (range(1, len(losses) + 1), losses)},
                       title="8x8 digits, MLP 64-128-64-10, adam + cosine", log_y=True,
                       smooth_weight=0.9)
    print(f"digits: test accuracy {100 * test_accuracy:.1f}% (chance 10%) on {N_TEST} held-out "
          f"digits after {args.steps} steps, final loss {losses[-1]:.4f}, "
          f"{timer.median_ms:.2f} ms/step (first step {timer.first_s:.1f} s)")
    report_plot(plot)
    return {"test_accuracy": test_accuracy, "losses": losses, "ms_per_step": timer.median_ms,
            "plot": plot}


if __name__ == "__main__":
    main(sys.argv[1:])
