"""The Keras-origin examples' parameter counts, proven on the originals: each original model is
rebuilt with keras.layers as its source code builds it, and its count_params() must equal both
`dlspec summary`'s total for the example and the count its header states."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable

import pytest

from dlspec.cli import main
from dlspec.frontend.load import build_file

pytestmark = pytest.mark.framework

ROOT = Path(__file__).resolve().parent.parent


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return pytest.importorskip("keras")


def mnist_hierarchical_rnn() -> Any:
    """keras-team/keras examples/mnist_hierarchical_rnn.py (Keras 2): rows of (28, 28, 1)."""
    keras = _keras()
    layers = keras.layers
    x = keras.Input(shape=(28, 28, 1))
    encoded_rows = layers.TimeDistributed(layers.LSTM(128))(x)
    encoded_columns = layers.LSTM(128)(encoded_rows)
    prediction = layers.Dense(10, activation="softmax")(encoded_columns)
    return keras.Model(x, prediction)


def babi_rnn() -> Any:
    """keras-team/keras examples/babi_rnn.py (Keras 2, RepeatVector + add) on QA2: vocab_size 36,
    story_maxlen 552, query_maxlen 5, EMBED_HIDDEN_SIZE 50."""
    keras = _keras()
    layers = keras.layers
    vocab_size, story_maxlen, query_maxlen, hidden = 36, 552, 5, 50
    sentence = keras.Input(shape=(story_maxlen,), dtype="int32")
    encoded_sentence = layers.Dropout(0.3)(layers.Embedding(vocab_size, hidden)(sentence))
    question = keras.Input(shape=(query_maxlen,), dtype="int32")
    encoded_question = layers.Dropout(0.3)(layers.Embedding(vocab_size, hidden)(question))
    encoded_question = layers.LSTM(hidden)(encoded_question)
    encoded_question = layers.RepeatVector(story_maxlen)(encoded_question)
    merged = layers.add([encoded_sentence, encoded_question])
    merged = layers.Dropout(0.3)(layers.LSTM(hidden)(merged))
    preds = layers.Dense(vocab_size, activation="softmax")(merged)
    return keras.Model([sentence, question], preds)


def pm25_lstm() -> Any:
    """Brownlee's multivariate PM2.5 LSTM: input (1 time step, 8 features), LSTM 50, Dense 1."""
    keras = _keras()
    layers = keras.layers
    return keras.Sequential([keras.Input(shape=(1, 8)), layers.LSTM(50), layers.Dense(1)])


ORIGINALS: dict[str, Callable[[], Any]] = {
    "mnist_hierarchical_rnn": mnist_hierarchical_rnn,
    "babi_rnn": babi_rnn,
    "pm25_lstm": pm25_lstm,
}


def header_count(spec: Path) -> int:
    """The count after 'Original parameter count:' in the spec's header comment."""
    header = " ".join(
        line.lstrip("# ") for line in spec.read_text().splitlines() if line[:1] == "#"
    )
    found = re.search(r"Original parameter count: ([\d,]+)", header)
    assert found, f"{spec.name}: no 'Original parameter count:' in the header"
    return int(found.group(1).replace(",", ""))


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_the_original_keras_model_has_the_summary_count(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ROOT / "examples" / f"{name}.dl"
    original = ORIGINALS[name]().count_params()
    assert main(["summary", str(spec)]) == 0
    summary = capsys.readouterr().out
    assert f"{original:,} parameters" in summary.splitlines()[-1], summary
    assert build_file(str(spec)).model.param_count == original
    assert header_count(spec) == original
