"""CIFAR VGG in PyTorch, hand-written after PyTorch's CIFAR-10 classifier tutorial ("Training a
Classifier": an nn.Module, nn.CrossEntropyLoss, torch.optim.SGD, a DataLoader), to time the
emitted script against."""

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

BATCH = 64
POOL_BATCHES = 8
STEPS_PER_EPOCH = math.ceil(50000 / BATCH)


class VGG(nn.Module):
    """Two blocks of two 3x3 convolutions (50, then 100 channels) with max-pooling and dropout,
    then a 512-unit dense layer and 10 logits."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 50, 3, padding=1)
        self.conv2 = nn.Conv2d(50, 50, 3, padding=1)
        self.conv3 = nn.Conv2d(50, 100, 3, padding=1)
        self.conv4 = nn.Conv2d(100, 100, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.dropout_conv = nn.Dropout(0.25)
        self.dropout_dense = nn.Dropout(0.5)
        self.fc1 = nn.Linear(100 * 8 * 8, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = self.dropout_conv(F.relu(self.pool(self.conv2(x))))
        x = F.relu(self.conv3(x))
        x = self.dropout_conv(F.relu(self.pool(self.conv4(x))))
        x = torch.flatten(x, 1)
        x = self.dropout_dense(F.relu(self.fc1(x)))
        return self.fc2(x)


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


def synthetic_pool(seed, device):
    """The emitted scripts' synthetic pool (8 batches of 64), as tensors on `device`."""
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((POOL_BATCHES * BATCH, 3, 32, 32)).astype(np.float32)
    y = rng.randint(0, 10, size=(POOL_BATCHES * BATCH,)).astype(np.int64)
    return TensorDataset(torch.from_numpy(x).to(device), torch.from_numpy(y).to(device))


def cycle(loader, steps):
    """`steps` batches from the loader, starting over when it runs out."""
    done = 0
    while done < steps:
        for batch in loader:
            if done == steps:
                return
            yield batch
            done += 1


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    args = parse_args()
    gpu = args.device == "gpu" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if gpu else "cpu")
    torch.manual_seed(args.seed)
    loader = DataLoader(synthetic_pool(args.seed, device), batch_size=BATCH, shuffle=False)
    model = VGG().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    total = STEPS_PER_EPOCH * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    warmup = min(args.warmup, max(total - 1, 0))
    step, epoch_seconds, timed_loss, start = 0, [], torch.zeros((), device=device), None
    model.train()
    for _ in range(args.epochs):
        if step >= total:
            break
        synchronize(device)
        epoch_start = time.perf_counter()
        for inputs, labels in cycle(loader, min(STEPS_PER_EPOCH, total - step)):
            if step == warmup:
                synchronize(device)
                start = time.perf_counter()
                cpu_start = cpu_seconds()
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            if step >= warmup:
                timed_loss += loss.detach()
            step += 1
        synchronize(device)
        epoch_seconds.append(time.perf_counter() - epoch_start)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    timed_steps = step - warmup
    results = {
        "script": "handwritten",
        "model": "cifar_vgg",
        "runtime": "pytorch",
        "framework": "torch",
        "framework_version": torch.__version__,
        "python": platform.python_version(),
        "device": "gpu" if gpu else "cpu",
        "threads": torch.get_num_threads(),
        "steps": step,
        "warmup_steps": warmup,
        "timed_samples": timed_steps * BATCH,
        "timed_seconds": seconds,
        "timed_cpu_seconds": cpu,
        "samples_per_second": timed_steps * BATCH / seconds,
        "final_loss": float(timed_loss) / timed_steps,
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
        f"cifar_vgg {results['runtime']} (hand-written): {rate:.1f} samples/s, loss {loss:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
