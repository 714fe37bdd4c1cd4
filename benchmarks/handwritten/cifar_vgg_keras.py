"""CIFAR VGG in Keras 3 (any backend, chosen by KERAS_BACKEND), hand-written after Keras's own
examples (mnist_convnet: a Sequential model, compile, model.fit on arrays), to time the emitted
script against."""

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

BATCH = 64
POOL_BATCHES = 8
STEPS_PER_EPOCH = math.ceil(50000 / BATCH)


def cpu_seconds():
    """CPU seconds this process has used, user and system, every thread's (os.times)."""
    times = os.times()
    return times[0] + times[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="synthetic", choices=("synthetic",))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=0, help="0: no limit")
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", help="results JSON (default: stdout)")
    return parser.parse_args()


ARGS = parse_args()
if ARGS.device == "cpu":  # before the backend loads: hide any GPU from it
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["JAX_PLATFORMS"] = "cpu"

import keras  # noqa: E402
from keras import layers  # noqa: E402


def build_model():
    """Two blocks of two 3x3 convolutions (50, then 100 channels) with max-pooling and dropout,
    then a 512-unit dense layer and 10 logits; channels last, Keras's default."""
    return keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3)),
            layers.Conv2D(50, 3, padding="same", activation="relu"),
            layers.Conv2D(50, 3, padding="same"),
            layers.MaxPooling2D(2),
            layers.ReLU(),
            layers.Dropout(0.25),
            layers.Conv2D(100, 3, padding="same", activation="relu"),
            layers.Conv2D(100, 3, padding="same"),
            layers.MaxPooling2D(2),
            layers.ReLU(),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10),
        ]
    )


def synthetic_epoch(seed, steps):
    """`steps` batches cycling the emitted scripts' synthetic pool (8 batches of 64), images
    moved to NHWC once: arrays, as model.fit takes them."""
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((POOL_BATCHES * BATCH, 3, 32, 32)).astype(np.float32)
    y = rng.randint(0, 10, size=(POOL_BATCHES * BATCH,)).astype(np.int64)
    rows = np.arange(steps * BATCH) % len(y)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)[rows]), y[rows]


def wait(model):
    """Wait for the queued updates: the update counter is read after the last of them."""
    keras.ops.convert_to_numpy(model.optimizer.iterations)


class Clock(keras.callbacks.Callback):
    """Starts the clock after the warm-up updates, stops training after `total` updates."""

    def __init__(self, warmup, total):
        super().__init__()
        self.warmup, self.total = warmup, total
        self.step, self.start, self.epoch_start, self.epoch_seconds = 0, None, None, []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        if self.step == self.warmup:
            wait(self.model)
            self.start = time.perf_counter()
            self.cpu_start = cpu_seconds()
        self.step += 1
        if self.step >= self.total:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        wait(self.model)
        self.epoch_seconds.append(time.perf_counter() - self.epoch_start)


def backend_facts():
    """(whether the backend computes on a GPU, the CPU thread count it reports or None)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        threads = tf.config.threading.get_intra_op_parallelism_threads() or None
        return bool(tf.config.list_physical_devices("GPU")), threads
    if backend == "jax":
        import jax

        return jax.devices()[0].platform == "gpu", None
    import torch

    return torch.cuda.is_available(), torch.get_num_threads()


def main():
    args = ARGS
    gpu, threads = backend_facts()
    if args.device == "gpu" and not gpu:
        raise SystemExit(f"--device gpu: Keras's {keras.backend.backend()} backend sees no GPU")
    keras.utils.set_random_seed(args.seed)
    total = STEPS_PER_EPOCH * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    warmup = min(args.warmup, max(total - 1, 0))
    x, y = synthetic_epoch(args.seed, min(STEPS_PER_EPOCH, total))
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    clock = Clock(warmup, total)
    history = model.fit(
        x, y, batch_size=BATCH, epochs=args.epochs, shuffle=False, verbose=0, callbacks=[clock]
    )
    wait(model)
    seconds = time.perf_counter() - clock.start
    cpu = cpu_seconds() - clock.cpu_start
    timed_steps = clock.step - warmup
    backend = keras.backend.backend()
    results = {
        "script": "handwritten",
        "model": "cifar_vgg",
        "runtime": f"keras[{backend}]",
        "framework": "keras",
        "framework_version": keras.__version__,
        "python": platform.python_version(),
        "device": "gpu" if gpu else "cpu",
        "threads": threads,
        "steps": clock.step,
        "warmup_steps": warmup,
        "timed_samples": timed_steps * BATCH,
        "timed_seconds": seconds,
        "timed_cpu_seconds": cpu,
        "samples_per_second": timed_steps * BATCH / seconds,
        # what fit reports: the mean loss of the last epoch's steps, warm-up ones included
        "final_loss": float(history.history["loss"][-1]),
        "epoch_seconds": clock.epoch_seconds,
    }
    text = json.dumps(results, indent=2, sort_keys=True)
    if args.results:
        with open(args.results, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    rate, loss = results["samples_per_second"], results["final_loss"]
    print(
        f"cifar_vgg {results['runtime']} (hand-written): {rate:.1f} samples/s, loss {loss:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
