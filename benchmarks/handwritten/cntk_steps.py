"""The CNTK IMDB GRU's training steps, hand-written and emitted, taking turns in one process.

    OMP_NUM_THREADS=1 taskset -c 1 .runtimes/cntk/python benchmarks/handwritten/cntk_steps.py
        [--steps 240] [--skip 20] [SCRIPT ...]

compare.py times whole processes, and on a shared VM two processes of the same script differ by
more than the few percent a change in the emitted GRU moves (docs/benchmarking.md). Here the
hand-written script's model, Trainer and `C.adam` (imported from imdb_gru_cntk.py beside this
file) and each emitted SCRIPT's Net and optimiser (default: generated/cntk/imdb_gru_cntk.py;
give an older copy too to measure a change) are built in one process and take one training step
each in turn, the order rotating every round, on the same 8 pooled batches, so a change in the
machine's speed falls on all of them alike. Printed per script: the median step time after the
first --skip rounds and the median of its per-round difference from the hand-written step. The
step is the training step alone: the emitted one is its optimiser's step() (the gradient call
and the written-out update), the hand-written one train_minibatch(). Python 2.7 and 3.
"""

from __future__ import absolute_import, division, print_function

import argparse
import imp
import os
import time

import cntk as C
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scripts", nargs="*", help="emitted imdb_gru CNTK scripts")
    parser.add_argument("--steps", type=int, default=240, help="rounds (one step of each)")
    parser.add_argument("--skip", type=int, default=20, help="first rounds left out")
    return parser.parse_args()


def handwritten_step(pool):
    """The hand-written script's model, Trainer and learner; a step on pooled batch b."""
    hand = imp.load_source("handwritten_imdb_gru", os.path.join(HERE, "imdb_gru_cntk.py"))
    features = C.sequence.input_variable(1, np.float32)
    labels = C.input_variable(2, np.float32)
    z = hand.build_model()(features)
    loss = C.cross_entropy_with_softmax(z, labels)
    learner = C.adam(
        z.parameters,
        lr=C.learning_parameter_schedule_per_sample(0.001),
        momentum=C.momentum_schedule(0.9),
        variance_momentum=C.momentum_schedule(0.999),
        epsilon=1e-8,
    )
    trainer = C.Trainer(z, (loss, None), [learner])

    def step(b):
        trainer.train_minibatch({features: pool[b][0], labels: pool[b][1]})

    return step


def emitted_step(path, index, pool):
    """An emitted script's Net, criterion and optimiser (seed 0); a step on pooled batch b."""
    script = imp.load_source("emitted_imdb_gru_%d" % index, path)
    net = script.Net()
    script.init_parameters(net, 0)
    criterion = script.make_criterion(net)
    optimizer = script.make_optimizer(net, criterion)
    tokens = [x.reshape(x.shape[0], -1) for x, _ in pool]  # (64, 150): the emitted input

    def step(b):
        optimizer.step({net.inputs[0]: tokens[b], criterion[0]: pool[b][1]}, 0.001, 64)

    return step


def main():
    args = parse_args()
    scripts = args.scripts or [os.path.join(ROOT, "generated", "cntk", "imdb_gru_cntk.py")]
    threads = C.cntk_py.get_max_num_cputhreads()  # OMP_NUM_THREADS when set
    hand = imp.load_source("handwritten_pool", os.path.join(HERE, "imdb_gru_cntk.py"))
    pool = hand.synthetic_pool(0)
    runs = [("hand-written", handwritten_step(pool))]
    runs += [(path, emitted_step(path, i, pool)) for i, path in enumerate(scripts)]
    C.cntk_py.set_max_num_cputhreads(threads)  # a Trainer raises it to every core
    times = [[] for _ in runs]
    for r in range(args.steps):
        k = r % len(runs)
        for i in list(range(k, len(runs))) + list(range(k)):
            start = time.time()
            runs[i][1](r % len(pool))
            times[i].append((time.time() - start) * 1000.0)
    hand_ms = np.array(times[0][args.skip :])
    print("%d rounds (%d left out), %d CPU thread(s)" % (args.steps, args.skip, threads))
    for i, (name, _) in enumerate(runs):
        ms = np.array(times[i][args.skip :])
        print(
            "%s: median %.1f ms a step, median difference from hand-written %+.1f ms, "
            "hand-written/this %.3f"
            % (name, np.median(ms), np.median(ms - hand_ms), np.median(hand_ms) / np.median(ms))
        )


if __name__ == "__main__":
    main()
