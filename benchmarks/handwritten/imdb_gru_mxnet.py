"""IMDB GRU (examples/imdb_gru.dl) by hand in MXNet Gluon, in the idiom of Gluon's crash course."""

# The crash course's idiom: a HybridBlock (Gluon's custom-block form, for the last-step readout)
# hybridized with static_alloc and static_shape (the flags Gluon's hybridize documentation offers
# for speed when shapes do not change), net.initialize(init.Xavier()), a gluon.data.DataLoader
# over an ArrayDataset, autograd.record(), loss.backward() and gluon.Trainer.step(batch_size).
# rnn.GRU with layout "NTC" is Gluon's fused GRU: gates [r, z, n], the reset gate applied after
# the recurrent product with two bias vectors, as PyTorch's (the spec's reset-after form).

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
from mxnet.gluon import nn, rnn

MODEL = "imdb_gru"
BATCH_SIZE = 64
TRAIN_SAMPLES = 25000  # one epoch is ceil(25000 / 64) = 391 steps over the cycled pool
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


class GRUClassifier(gluon.HybridBlock):
    """Embedding 30000 x 125, GRU 100 reading the last step, dense 2 (logits)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.embedding = nn.Embedding(30000, 125)
            self.gru = rnn.GRU(100, layout="NTC")
            self.output = nn.Dense(2)

    def hybrid_forward(self, F, tokens):
        steps = self.gru(self.embedding(tokens))  # (N, 150, 100)
        # the last step (F.SequenceLast would do, but its backward crashes MXNet 1.9.1 on the CPU)
        return self.output(F.squeeze(F.slice_axis(steps, axis=1, begin=-1, end=None), axis=1))


def synthetic_loader(seed, ctx):
    """The pool of 8 batches as NDArrays on ctx ((N, 150) token ids), in a DataLoader."""
    rng = np.random.RandomState(seed)
    count = POOL_BATCHES * BATCH_SIZE
    x = rng.randint(0, 30000, size=(count, 150)).astype(np.int32)
    y = rng.randint(0, 2, size=(count,)).astype(np.int64)
    dataset = gluon.data.ArrayDataset(nd.array(x, ctx=ctx, dtype=x.dtype), nd.array(y, ctx=ctx))
    return gluon.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=False)


def cycle(loader):
    while True:
        yield from loader


def main():
    args = parse_args()
    mx.random.seed(args.seed)
    ctx = pick_context(args.device)
    loader = synthetic_loader(args.seed, ctx)

    net = GRUClassifier()
    net.initialize(init.Xavier(), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    adam = {"learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    trainer = gluon.Trainer(net.collect_params(), "adam", adam)

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
