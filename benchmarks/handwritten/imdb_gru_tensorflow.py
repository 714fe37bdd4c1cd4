"""IMDB GRU in TensorFlow, hand-written after TensorFlow's "Writing a training loop from scratch"
guide (tf.keras layers, a tf.data.Dataset, tf.GradientTape in a @tf.function step, a tf.keras
optimiser), to time the emitted script against."""

import argparse
import json
import math
import os
import platform
import sys
import time

os.environ["KERAS_BACKEND"] = "tensorflow"  # tf.keras is Keras 3: make sure it runs on TF

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 64
POOL_BATCHES = 8
STEPS_PER_EPOCH = math.ceil(25000 / BATCH)


def build_model():
    """Embedding of 30000 words in 125 dimensions, a GRU of 100 units (reset gate after the
    recurrent matmul, Keras's default and PyTorch's form) read at its last step, 2 logits."""
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            tf.keras.Input(shape=(150,), dtype="int32"),
            layers.Embedding(30000, 125),
            layers.GRU(100),
            layers.Dense(2),
        ]
    )


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


def synthetic_pool(seed):
    """The emitted scripts' synthetic pool (8 batches of 64)."""
    rng = np.random.RandomState(seed)
    x = rng.randint(0, 30000, size=(POOL_BATCHES * BATCH, 150)).astype(np.int32)
    y = rng.randint(0, 2, size=(POOL_BATCHES * BATCH,)).astype(np.int64)
    return x, y


def main():
    args = parse_args()
    gpus = tf.config.list_physical_devices("GPU")
    if args.device == "gpu" and not gpus:
        raise SystemExit("--device gpu: TensorFlow sees no GPU")
    gpu = bool(gpus) and args.device != "cpu"
    tf.keras.utils.set_random_seed(args.seed)
    with tf.device("/GPU:0" if gpu else "/CPU:0"):
        x, y = synthetic_pool(args.seed)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
        model = build_model()
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = tf.keras.optimizers.Adam(
            learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8
        )

        @tf.function
        def train_step(x, y):
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = loss_fn(y, logits)
            grads = tape.gradient(loss, model.trainable_weights)
            optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
            return loss

        total = STEPS_PER_EPOCH * args.epochs
        if args.max_steps:
            total = min(total, args.max_steps)
        warmup = min(args.warmup, max(total - 1, 0))
        step, epoch_seconds, timed_loss, start, loss = 0, [], 0.0, None, None
        for _ in range(args.epochs):
            if step >= total:
                break
            epoch_start = time.perf_counter()
            steps = min(STEPS_PER_EPOCH, total - step)
            for x_batch, y_batch in dataset.repeat().take(steps):
                if step == warmup:
                    if loss is not None:
                        loss.numpy()  # wait for the warm-up steps
                    start = time.perf_counter()
                    cpu_start = cpu_seconds()
                loss = train_step(x_batch, y_batch)
                if step >= warmup:
                    timed_loss += loss
                step += 1
            timed_loss = float(timed_loss)  # waits for the last step
            epoch_seconds.append(time.perf_counter() - epoch_start)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    timed_steps = step - warmup
    results = {
        "script": "handwritten",
        "model": "imdb_gru",
        "runtime": "tensorflow",
        "framework": "tensorflow",
        "framework_version": tf.__version__,
        "python": platform.python_version(),
        "device": "gpu" if gpu else "cpu",
        "threads": tf.config.threading.get_intra_op_parallelism_threads() or None,
        "steps": step,
        "warmup_steps": warmup,
        "timed_samples": timed_steps * BATCH,
        "timed_seconds": seconds,
        "timed_cpu_seconds": cpu,
        "samples_per_second": timed_steps * BATCH / seconds,
        "final_loss": timed_loss / timed_steps,
        "epoch_seconds": epoch_seconds,
    }
    text = json.dumps(results, indent=2, sort_keys=True)
    if args.results:
        with open(args.results, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    rate, loss = results["samples_per_second"], results["final_loss"]
    print(
        f"imdb_gru {results['runtime']} (hand-written): {rate:.1f} samples/s, loss {loss:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
