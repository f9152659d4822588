"""A character-level GRU language model, trained with `lax.scan` on text that ships with Python.

What it shows: a recurrent network written as a `lax.scan` over time (the loop is one
primitive, so `grad` differentiates through it, backpropagation through time, and `jit`
compiles it as a loop), and sampling from the trained model with keys: another `scan` that
feeds each sampled character back in, drawing it with `random.categorical` from a key split
per step.

The text is the Python documentation's topic help (`pydoc_data.topics`, what `help("if")`
prints), about 465,000 characters; the last 5% is held out. A GRU cell (Cho et al. 2014):

    z = sigmoid(x Wz + h Uz + bz)          the update gate
    r = sigmoid(x Wr + h Ur + br)          the reset gate
    n = tanh(x Wn + r * (h Un) + bn)       the candidate
    h' = (1 - z) * n + z * h

The input projections `x W` of all time steps are one matrix product before the scan, so the
loop body holds only the recurrent product `h U`. The script prints the held-out loss in bits
per character and a sample, and writes the loss curve to `examples/out/char_rnn_loss.png`.

Usage:
    python examples/char_rnn.py                    # 1500 steps
    python examples/char_rnn.py --quick            # for the tests
    python examples/char_rnn.py --prompt "The while statement" --temperature 0.7
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
from _common import StepTimer, make_parser, parse_args, plot_curves, progress, report_plot

import fnbrrr as jax
import fnbrrr.numpy as jnp
from fnbrrr import lax, nn, optim, random

SEQ_LEN = 64
BATCH_SIZE = 32
EMBED = 32
HIDDEN = 192


def load_text() -> tuple[str, list[str]]:
    """The topic help of `pydoc_data.topics`, joined in order of topic name, and its sorted
    character vocabulary."""
    from pydoc_data.topics import topics

    text = "\n".join(topics[name] for name in sorted(topics))
    return text, sorted(set(text))


# --------------------------------------------------------------------------------------------
# The model: embedding -> GRU (a scan over time) -> dense logits
# --------------------------------------------------------------------------------------------


def init_params(key, vocab_size: int) -> dict:
    """Parameters as a dict pytree: the embedding table, the GRU's input and recurrent
    weights (the three gates side by side) and the output layer."""
    k_embed, k_in, k_rec, k_out = random.split(key, 4)
    _, embedding = nn.Embedding(vocab_size, EMBED,
                                nn.initializers.normal(stddev=0.3)).init(k_embed, (-1,))
    glorot = nn.initializers.glorot_uniform()
    _, out = nn.Dense(vocab_size).init(k_out, (-1, HIDDEN))
    return {
        "embed": embedding,
        "w_in": glorot(k_in, (EMBED, 3 * HIDDEN)),
        "w_rec": glorot(k_rec, (HIDDEN, 3 * HIDDEN)),
        "b": jnp.zeros(3 * HIDDEN),
        "out": out,
    }


def embed(params: dict, ids):
    """The embedding vectors of integer `ids`: shape ids.shape + (EMBED,)."""
    return jnp.take(params["embed"]["embedding"], ids, axis=0)


def readout(params: dict, h):
    """Next-character logits from hidden states: h.shape[:-1] + (vocab,)."""
    return h @ params["out"]["w"] + params["out"]["b"]


def gru_scan(params: dict, h0, xs_projected):
    """Run the GRU over time. `xs_projected`: (T, B, 3H), the inputs already multiplied by
    `w_in` (plus bias); `h0`: (B, H). Returns (final h, all h of shape (T, B, H))."""

    def cell(h, x_projected):
        h_projected = h @ params["w_rec"]
        z = nn.sigmoid(x_projected[:, :HIDDEN] + h_projected[:, :HIDDEN])
        r = nn.sigmoid(x_projected[:, HIDDEN:2 * HIDDEN] + h_projected[:, HIDDEN:2 * HIDDEN])
        n = jnp.tanh(x_projected[:, 2 * HIDDEN:] + r * h_projected[:, 2 * HIDDEN:])
        h = (1.0 - z) * n + z * h
        return h, h

    return lax.scan(cell, h0, xs_projected)


def logits_fn(params: dict, ids):
    """Next-character logits for every position of `ids` (B, T) -> (B, T, vocab)."""
    x = embed(params, ids.T)  # (T, B, E): time leads, for scan
    xs_projected = x @ params["w_in"] + params["b"]
    h0 = jnp.zeros((ids.shape[0], HIDDEN))
    _, hs = gru_scan(params, h0, xs_projected)
    logits = readout(params, hs)  # (T, B, vocab)
    return jnp.transpose(logits, (1, 0, 2))


def loss_fn(params: dict, window):
    """Mean cross-entropy (nats per character) of predicting `window[:, 1:]` from
    `window[:, :-1]`; `window` is (B, T + 1) integer ids."""
    logits = logits_fn(params, window[:, :-1])
    return nn.softmax_cross_entropy_with_integer_labels(logits, window[:, 1:]).mean()


def make_optimizer(learning_rate) -> optim.GradientTransformation:
    """Global-norm clipping (recurrent gradients can spike) then Adam."""
    return optim.chain(optim.clip_by_global_norm(1.0), optim.adam(learning_rate))


@jax.jit
def train_step(params, opt_state, window, learning_rate):
    """One step of Adam on a batch of windows. The learning rate is an argument (a Python
    float; new values do not retrace), so one compiled step serves any schedule."""
    loss, grads = jax.value_and_grad(loss_fn)(params, window)
    updates, opt_state = make_optimizer(learning_rate).update(grads, opt_state, params)
    return optim.apply_updates(params, updates), opt_state, loss


evaluate = jax.jit(loss_fn)


def sample(params: dict, prompt_ids, key, length: int, temperature: float):
    """Feed `prompt_ids` (1-D) through the GRU, then draw `length` characters, each from
    `softmax(logits / temperature)` with its own key, feeding it back in. Returns the ids."""

    @jax.jit
    def run(params, prompt_ids, keys, temperature):
        x = embed(params, prompt_ids[:, None])  # (T, 1, E)
        h, _ = gru_scan(params, jnp.zeros((1, HIDDEN)), x @ params["w_in"] + params["b"])
        last = prompt_ids[-1:]

        def draw(carry, key):
            h, _ = carry
            logits = readout(params, h)  # (1, vocab)
            next_id = random.categorical(key, logits / temperature, axis=-1)  # (1,)
            x = embed(params, next_id)
            h, _ = gru_scan(params, h, (x @ params["w_in"] + params["b"])[None])
            return (h, next_id), next_id[0]

        _, ids = lax.scan(draw, (h, last), keys)
        return ids

    # The state after the prompt already predicts the first new character: the loop draws
    # from `h` before feeding the drawn character in.
    return run(params, jnp.asarray(prompt_ids), random.split(key, length), temperature)


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate on the held-out text, sample; returns losses and the sample."""
    parser = make_parser(__doc__, steps=1500, quick_steps=30)
    parser.add_argument("--lr", type=float, default=4e-3, help="peak learning rate")
    parser.add_argument("--prompt", default="The ", help="text to start sampling from")
    parser.add_argument("--sample-length", type=int, default=None,
                        help="characters to sample (default 400; 60 with --quick)")
    parser.add_argument("--temperature", type=float, default=0.6,
                        help="sampling temperature (lower: more conservative)")
    args = parse_args(parser, argv)
    sample_length = args.sample_length or (60 if args.quick else 400)

    text, vocab = load_text()
    char_to_id = {c: i for i, c in enumerate(vocab)}
    ids = np.array([char_to_id[c] for c in text], np.int32)
    split = int(0.95 * len(ids))
    train_ids, valid_ids = ids[:split], ids[split:]
    unknown = [c for c in args.prompt if c not in char_to_id]
    if not args.prompt or unknown:
        parser.error(f"--prompt must be non-empty and use characters of the text; "
                     f"not in it: {unknown}")

    key = random.PRNGKey(args.seed)
    init_key, batch_key, sample_key = random.split(key, 3)
    params = init_params(init_key, len(vocab))
    opt_state = make_optimizer(args.lr).init(params)
    schedule = optim.warmup_cosine_decay_schedule(0.0, args.lr, min(100, args.steps // 10 + 1),
                                                  args.steps, end_value=0.05 * args.lr)
    learning_rates = np.asarray(schedule(np.arange(args.steps)), np.float64)
    offsets = np.arange(SEQ_LEN + 1)

    losses, timer = [], StepTimer()
    bar = progress(args.steps, "char GRU", disable=args.no_progress)
    for step in bar:
        starts = np.asarray(random.randint(random.fold_in(batch_key, step), (BATCH_SIZE,), 0,
                                           len(train_ids) - SEQ_LEN - 1))
        window = train_ids[starts[:, None] + offsets]
        with timer:
            params, opt_state, loss = train_step(params, opt_state, window,
                                                 float(learning_rates[step]))
        losses.append(float(loss))
        bar.set_postfix_str(f"loss {losses[-1]:.3f}", refresh=False)
    bar.close()

    # Held-out loss over disjoint windows of the last 5% (a fixed number, so one shape).
    n_windows = BATCH_SIZE * (2 if args.quick else 8)
    stride = (len(valid_ids) - SEQ_LEN - 1) // n_windows
    starts = np.arange(n_windows) * stride
    valid = valid_ids[starts[:, None] + offsets]
    valid_loss = float(np.mean([float(evaluate(params, valid[i:i + BATCH_SIZE]))
                                for i in range(0, n_windows, BATCH_SIZE)]))

    prompt_ids = np.array([char_to_id[c] for c in args.prompt], np.int32)
    drawn = np.asarray(sample(params, prompt_ids, sample_key, sample_length, args.temperature))
    generated = args.prompt + "".join(vocab[i] for i in drawn)

    plot = plot_curves(os.path.join(args.out, "char_rnn_loss.png"),
                       {"training loss (batch)": (range(1, len(losses) + 1), losses),
                        "held-out loss (end)": ([len(losses)], [valid_loss])},
                       title=f"character GRU (hidden {HIDDEN}) on pydoc_data.topics",
                       ylabel="cross-entropy (nats per character)", smooth_weight=0.95)
    print(f"--- sample (temperature {args.temperature}) ---\n{generated}\n---")
    print(f"char_rnn: held-out loss {valid_loss:.3f} nats/char "
          f"({valid_loss / math.log(2):.2f} bits/char; uniform over {len(vocab)} characters: "
          f"{math.log2(len(vocab)):.2f}) after {args.steps} steps, "
          f"{timer.median_ms:.1f} ms/step (first step {timer.first_s:.1f} s)")
    report_plot(plot)
    return {"losses": losses, "valid_loss": valid_loss, "sample": generated,
            "vocab": vocab, "plot": plot}


if __name__ == "__main__":
    main(sys.argv[1:])
