"""CIFAR VGG (examples/cifar_vgg.dl) by hand in MXNet Gluon, in the idiom of Gluon's crash course."""

# The crash course's idiom: an nn.HybridSequential hybridized (with static_alloc and
# static_shape, the flags Gluon's hybridize documentation offers for speed when shapes do not
# change), net.initialize(init.Xavier()), a gluon.data.DataLoader over an ArrayDataset,
# autograd.record(), loss.backward() and gluon.Trainer.step(batch_size). Xavier() is Gluon's
# Glorot uniform, the spec's initialiser.

import argparse
import json
import math
import os
import platform
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init, nd
from mxnet.gluon import nn

MODEL = "cifar_vgg"
BATCH_SIZE = 64
TRAIN_SAMPLES = 50000  # one epoch is ceil(50000 / 64) = 782 steps over the cycled pool
POOL_BATCHES = 8


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


def pick_context(device):
    gpus = mx.context.num_gpus()
    if device == "gpu" and gpus == 0:
        sys.exit("--device gpu: MXNet sees no GPU")
    return mx.gpu(0) if device != "cpu" and gpus > 0 else mx.cpu()


def build_net():
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(50, kernel_size=3, padding=1, activation="relu"),
        nn.Conv2D(50, kernel_size=3, padding=1),
        nn.MaxPool2D(pool_size=2, strides=2),
        nn.Activation("relu"),
        nn.Dropout(0.25),
        nn.Conv2D(100, kernel_size=3, padding=1, activation="relu"),
        nn.Conv2D(100, kernel_size=3, padding=1),
        nn.MaxPool2D(pool_size=2, strides=2),
        nn.Activation("relu"),
        nn.Dropout(0.25),
        nn.Dense(512, activation="relu"),  # Dense flattens its (N, 100, 8, 8) input
        nn.Dropout(0.5),
        nn.Dense(10),
    )
    return net


def synthetic_loader(seed, ctx):
    """The pool of 8 batches as NDArrays on ctx (NCHW, Gluon's layout), in a DataLoader."""
    rng = np.random.RandomState(seed)
    count = POOL_BATCHES * BATCH_SIZE
    x = rng.standard_normal((count, 3, 32, 32)).astype(np.float32)
    y = rng.randint(0, 10, size=(count,)).astype(np.int64)
    dataset = gluon.data.ArrayDataset(nd.array(x, ctx=ctx), nd.array(y, ctx=ctx))
    return gluon.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=False)


def cycle(loader):
    while True:
        yield from loader


def main():
    args = parse_args()
    mx.random.seed(args.seed)
    ctx = pick_context(args.device)
    loader = synthetic_loader(args.seed, ctx)

    net = build_net()
    net.initialize(init.Xavier(), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01, "momentum": 0.9})

    steps_per_epoch = math.ceil(TRAIN_SAMPLES / BATCH_SIZE)
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    warmup = min(args.warmup, max(total - 1, 0))
    batches = cycle(loader)
    step, timed_loss, start, epoch_seconds = 0, nd.zeros((1,), ctx=ctx), None, []
    for _ in range(args.epochs):
        if step >= total:
            break
        nd.waitall()
        epoch_start = time.perf_counter()
        for _ in range(steps_per_epoch):
            if step >= total:
                break
            if step == warmup:
                nd.waitall()
                start = time.perf_counter()
                cpu_start = cpu_seconds()
            data, label = next(batches)
            with autograd.record():
                loss = loss_fn(net(data), label)
            loss.backward()
            trainer.step(BATCH_SIZE)
            if step >= warmup:
                timed_loss += loss.mean()
            step += 1
        nd.waitall()
        epoch_seconds.append(time.perf_counter() - epoch_start)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    timed_steps = step - warmup
    report(args, ctx, step, warmup, timed_steps, seconds, cpu, timed_loss, epoch_seconds)


def report(args, ctx, steps, warmup, timed_steps, seconds, cpu, timed_loss, epoch_seconds):
    samples = timed_steps * BATCH_SIZE
    results = {
        "script": "handwritten",
        "model": MODEL,
        "runtime": "mxnet",
        "framework": "mxnet",
        "framework_version": mx.__version__,
        "python": platform.python_version(),
        "device": "gpu" if ctx.device_type == "gpu" else "cpu",
        "threads": None,  # MXNet does not report its OpenMP thread count
        "steps": steps,
        "warmup_steps": warmup,
        "timed_samples": samples,
        "timed_seconds": seconds,
        "timed_cpu_seconds": cpu,
        "samples_per_second": samples / seconds,
        "final_loss": float(timed_loss.asscalar()) / max(timed_steps, 1),
        "epoch_seconds": epoch_seconds,
    }
    text = json.dumps(results, indent=2)
    if args.results:
        with open(args.results, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    print(
        f"handwritten {MODEL} mxnet: {steps} steps, {results['samples_per_second']:.1f} "
        f"samples/s, loss {results['final_loss']:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
