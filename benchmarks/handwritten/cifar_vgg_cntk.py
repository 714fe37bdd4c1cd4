"""CIFAR VGG (examples/cifar_vgg.dl) by hand in CNTK, in the idiom of CNTK's CNN tutorials."""

# CNTK_201B_CIFAR-10_ImageHandsOn and CNTK_103D (MNIST CNN): a model of cntk.layers (Sequential,
# Convolution2D with pad=True, MaxPooling, Dropout, Dense; CNTK's default Glorot uniform
# initialiser), cross_entropy_with_softmax against one-hot labels, a cntk.Trainer with a
# momentum_sgd learner; train_minibatch fed NumPy arrays as CNTK_102 feeds them. Runs under
# Python 2.7 and 3.
#
# The spec's SGD is PyTorch's: lr 0.01 on the batch-mean gradient, v = 0.9 v + g. CNTK's Trainer
# takes the gradient of the summed loss; a learning_parameter_schedule made without a minibatch
# size applies lr / (samples in the minibatch) to it, i.e. lr to the mean (measured in CNTK 2.7).
# momentum_sgd's default unit_gain=True would scale the gradient by 1 - 0.9: unit_gain=False
# gives v = 0.9 v + lr g, w -= v, the spec's update for a constant lr.

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

MODEL = "cifar_vgg"
BATCH_SIZE = 64
TRAIN_SAMPLES = 50000  # one epoch is ceil(50000 / 64) = 782 steps over the cycled pool
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


def build_model():
    return C.layers.Sequential(
        [
            C.layers.Convolution2D((3, 3), 50, pad=True, activation=C.relu),
            C.layers.Convolution2D((3, 3), 50, pad=True),
            C.layers.MaxPooling((2, 2), strides=(2, 2)),
            C.relu,
            C.layers.Dropout(0.25),
            C.layers.Convolution2D((3, 3), 100, pad=True, activation=C.relu),
            C.layers.Convolution2D((3, 3), 100, pad=True),
            C.layers.MaxPooling((2, 2), strides=(2, 2)),
            C.relu,
            C.layers.Dropout(0.25),
            C.layers.Dense(512, activation=C.relu),  # Dense maps the whole (100, 8, 8) sample
            C.layers.Dropout(0.5),
            C.layers.Dense(10),
        ]
    )


def synthetic_pool(seed):
    """The pool of 8 batches: (C, H, W) images, CNTK's layout, and one-hot float32 labels."""
    rng = np.random.RandomState(seed)
    count = POOL_BATCHES * BATCH_SIZE
    x = rng.standard_normal((count, 3, 32, 32)).astype(np.float32)
    y = rng.randint(0, 10, size=(count,)).astype(np.int64)
    return x, np.eye(10, dtype=np.float32)[y]


def main():
    args = parse_args()
    np.random.seed(args.seed)
    C.cntk_py.set_fixed_random_seed(args.seed + 1)
    device = pick_device(args.device)
    x_pool, y_pool = synthetic_pool(args.seed)

    features = C.input_variable((3, 32, 32), np.float32)
    labels = C.input_variable(10, np.float32)
    z = build_model()(features)
    loss = C.cross_entropy_with_softmax(z, labels)
    learner = C.momentum_sgd(
        z.parameters,
        lr=C.learning_parameter_schedule(0.01),
        momentum=C.momentum_schedule(0.9),
        unit_gain=False,
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
            rows = slice((step % POOL_BATCHES) * BATCH_SIZE, (step % POOL_BATCHES + 1) * BATCH_SIZE)
            trainer.train_minibatch({features: x_pool[rows], labels: y_pool[rows]})
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
