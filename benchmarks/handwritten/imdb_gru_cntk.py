"""IMDB GRU (examples/imdb_gru.dl) by hand in CNTK, in the idiom of CNTK's sequence tutorials."""

# CNTK's SequenceClassification example and CNTK_202 (language understanding) feed text as a
# sequence input (a dynamic sequence axis, one step per token), and so does this script, then
# cntk.layers Sequential of Recurrence(GRU(100)), sequence.last and Dense(2) (CNTK's default
# Glorot uniform initialiser), cross_entropy_with_softmax against one-hot labels, a cntk.Trainer
# with an adam learner and train_minibatch on NumPy arrays (the pool made once: 8 batches of
# (64, 150, 1) token ids). Runs under Python 2.7 and 3.
#
# The embedding: those tutorials feed sparse one-hot tokens to cntk.layers.Embedding, but then
# the embedding's gradient is sparse and CNTK 2.7's CPU Adam refuses it ("AdamUpdate -> Feature
# Not Implemented", measured); so the table is a Parameter read with C.gather, whose gradient is
# dense, as every other framework's Adam updates it.
#
# CNTK's GRU is what it is: cntk.layers.GRU applies the reset gate before the recurrent product
# and has one bias vector, not PyTorch's reset-after form with two.
# Adam: the Trainer takes the gradient of the summed loss; the per-sample rate 1e-3 on it, as
# CNTK's tutorials give Adam's rate, moves weights as Adam(1e-3) on the batch mean does (Adam
# is scale-free in the gradient but for eps, which meets 64 times the mean's moments). beta2 is
# given as a per-minibatch momentum_schedule (CNTK's default is a per-sample time constant);
# unit_gain=True (the default) is Adam's m = b1 m + (1 - b1) g.

from __future__ import absolute_import, division, print_function

import argparse
import json
import math
import os
import platform
import sys
import time

import cntk as C
import numpy as np

MODEL = "imdb_gru"
BATCH_SIZE = 64
TRAIN_SAMPLES = 25000  # one epoch is ceil(25000 / 64) = 391 steps over the cycled pool
POOL_BATCHES = 8
clock = getattr(time, "perf_counter", time.time)  # Python 2.7 has no perf_counter


def cpu_seconds():
    """CPU seconds this process has used, user and system, every thread's (os.times)."""
    times = os.times()
    return times[0] + times[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="synthetic", choices=["synthetic"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=0, help="0: no limit")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", help="results JSON (default: stdout)")
    return parser.parse_args()


def pick_device(device):
    gpus = [d for d in C.device.all_devices() if d.type() == C.device.DeviceKind.GPU]
    if device == "gpu" and not gpus:
        sys.exit("--device gpu: CNTK sees no GPU")
    chosen = gpus[0] if device != "cpu" and gpus else C.device.cpu()
    C.device.try_set_default_device(chosen)
    return chosen


VOCABULARY = 30000


def build_model():
    table = C.parameter((VOCABULARY, 125), init=C.glorot_uniform(), name="embedding")

    @C.Function
    def embedding(tokens):
        return C.reshape(C.gather(table, tokens), (125,))

    return C.layers.Sequential(
        [
            embedding,
            C.layers.Recurrence(C.layers.GRU(100)),
            C.sequence.last,
            C.layers.Dense(2),
        ]
    )


def synthetic_pool(seed):
    """The pool of 8 batches: (64, 150, 1) token ids (float32, CNTK's input type; exact below
    2 ** 24) and one-hot float32 labels."""
    rng = np.random.RandomState(seed)
    count = POOL_BATCHES * BATCH_SIZE
    x = rng.randint(0, VOCABULARY, size=(count, 150)).astype(np.int32)
    y = rng.randint(0, 2, size=(count,)).astype(np.int64)
    tokens = x.astype(np.float32).reshape((POOL_BATCHES, BATCH_SIZE, 150, 1))
    labels = np.eye(2, dtype=np.float32)[y].reshape((POOL_BATCHES, BATCH_SIZE, 2))
    return [(tokens[b], labels[b]) for b in range(POOL_BATCHES)]


def main():
    args = parse_args()
    np.random.seed(args.seed)
    C.cntk_py.set_fixed_random_seed(args.seed + 1)
    device = pick_device(args.device)
    pool = synthetic_pool(args.seed)

    features = C.sequence.input_variable(1, np.float32)
    labels = C.input_variable(2, np.float32)
    z = build_model()(features)
    loss = C.cross_entropy_with_softmax(z, labels)
    learner = C.adam(
        z.parameters,
        lr=C.learning_parameter_schedule_per_sample(0.001),
        momentum=C.momentum_schedule(0.9),
        variance_momentum=C.momentum_schedule(0.999),
        epsilon=1e-8,
    )
    threads = C.cntk_py.get_max_num_cputhreads()  # OMP_NUM_THREADS when set
    trainer = C.Trainer(z, (loss, None), [learner])
    C.cntk_py.set_max_num_cputhreads(threads)  # a Trainer raises it to every core (measured)

    steps_per_epoch = int(math.ceil(TRAIN_SAMPLES / BATCH_SIZE))
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    warmup = min(args.warmup, max(total - 1, 0))
    step, timed_loss, start, epoch_seconds = 0, 0.0, None, []
    for _ in range(args.epochs):
        if step >= total:
            break
        epoch_start = clock()
        for _ in range(steps_per_epoch):
            if step >= total:
                break
            if step == warmup:
                start = clock()  # train_minibatch returns when the update is done
                cpu_start = cpu_seconds()
            tokens, targets = pool[step % POOL_BATCHES]
            trainer.train_minibatch({features: tokens, labels: targets})
            if step >= warmup:
                timed_loss += trainer.previous_minibatch_loss_average
            step += 1
        epoch_seconds.append(clock() - epoch_start)
    seconds = clock() - start
    cpu = cpu_seconds() - cpu_start
    report(args, device, step, warmup, seconds, cpu, timed_loss, epoch_seconds)


def report(args, device, steps, warmup, seconds, cpu, timed_loss, epoch_seconds):
    samples = (steps - warmup) * BATCH_SIZE
    results = {
        "script": "handwritten",
        "model": MODEL,
        "runtime": "cntk",
        "framework": "cntk",
        "framework_version": C.__version__,
        "python": platform.python_version(),
        "device": "gpu" if device.type() == C.device.DeviceKind.GPU else "cpu",
        "threads": C.cntk_py.get_max_num_cputhreads(),
        "steps": steps,
        "warmup_steps": warmup,
        "timed_samples": samples,
        "timed_seconds": seconds,
        "timed_cpu_seconds": cpu,
        "samples_per_second": samples / seconds,
        "final_loss": timed_loss / max(steps - warmup, 1),
        "epoch_seconds": epoch_seconds,
    }
    text = json.dumps(results, indent=2, sort_keys=True)
    if args.results:
        with open(args.results, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    print(
        "handwritten %s cntk: %d steps, %.1f samples/s, loss %.4f"
        % (MODEL, steps, results["samples_per_second"], results["final_loss"]),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
