"""The numbers of a simulated fine-tuning run: hyperparameters, the step plan, seeded
loss curves, checkpoints and the metrics file. Pure functions: the same job (same
seed) gives the same curve in every process, so a run resumed after a restart
continues the curve it had.

* ``n_epochs`` "auto" follows OpenAI's published heuristic: 3 epochs, raised so that
  small files see at least 100 examples (at most 25 epochs) and lowered so that large
  ones see at most 25,000 (at least 1).
* ``batch_size`` "auto" is about 0.2% of the examples, between 1 and 256;
  ``learning_rate_multiplier`` "auto" is 2.0 for batches up to 8, then 1.8.
* The training loss decays exponentially from a seeded start (2-3 for supervised,
  ln 2 for DPO) to a seeded floor, with multiplicative noise; the token accuracy is
  ``exp(-0.35 loss)`` plus noise (DPO: the preference accuracy, 0.5 to 1). With a
  validation file, ``valid_loss`` is evaluated every tenth of the run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

TARGET_EPOCHS, MIN_EXAMPLES, MAX_EXAMPLES, MAX_AUTO_EPOCHS = 3, 100, 25_000, 25
MAX_METRIC_EVENTS = 200
CSV_HEADER = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"


def auto_epochs(n_examples: int) -> int:
    if n_examples * TARGET_EPOCHS < MIN_EXAMPLES:
        return min(MAX_AUTO_EPOCHS, math.ceil(MIN_EXAMPLES / n_examples))
    if n_examples * TARGET_EPOCHS > MAX_EXAMPLES:
        return max(1, MAX_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def auto_batch_size(n_examples: int) -> int:
    return max(1, min(256, round(n_examples * 0.002)))


def resolve(requested: dict, n_examples: int, method: str) -> dict:
    """Concrete hyperparameters from the requested ones ("auto" or values)."""
    batch = requested.get("batch_size", "auto")
    batch = auto_batch_size(n_examples) if batch == "auto" else batch
    lr = requested.get("learning_rate_multiplier", "auto")
    epochs = requested.get("n_epochs", "auto")
    out = {"batch_size": batch,
           "learning_rate_multiplier": (2.0 if batch <= 8 else 1.8) if lr == "auto" else lr,
           "n_epochs": auto_epochs(n_examples) if epochs == "auto" else epochs}
    if method == "dpo":
        beta = requested.get("beta", "auto")
        out["beta"] = 0.1 if beta == "auto" else beta
    return out


@dataclass(frozen=True, slots=True)
class Plan:
    examples: int
    batch_size: int
    n_epochs: int
    validation: bool
    method: str
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.examples / self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.n_epochs

    @property
    def eval_every(self) -> int:
        return math.ceil(self.total_steps / 10)

    def emits(self, step: int) -> bool:
        """Whether ``step`` gets a metrics event (every step, or evenly spaced ones)."""
        every = math.ceil(self.total_steps / MAX_METRIC_EVENTS)
        return step % every == 0 or step == self.total_steps

    def checkpoint_steps(self) -> list[int]:
        """The end of each of the last three epochs (OpenAI keeps those checkpoints)."""
        first = max(1, self.n_epochs - 2)
        return [self.steps_per_epoch * e for e in range(first, self.n_epochs + 1)]

    def _shape(self) -> tuple[float, float]:
        r = random.Random(f"curve:{self.seed}")
        if self.method == "dpo":
            return math.log(2), 0.05 + 0.15 * r.random()
        return 2.0 + r.random(), 0.05 + 0.35 * r.random()

    def _accuracy(self, loss: float, rng: random.Random) -> float:
        if self.method == "dpo":
            acc = 1.0 - 0.5 * min(1.0, loss / math.log(2))
        else:
            acc = math.exp(-0.35 * loss)
        return min(1.0, max(0.0, acc + rng.gauss(0, 0.02)))

    def evaluates(self, step: int) -> bool:
        return self.validation and (step % self.eval_every == 0 or step == self.total_steps)

    def metrics(self, step: int, evaluate: bool | None = None) -> dict:
        """The metrics at ``step`` (1-based): train loss and accuracy, and the validation
        ones at evaluation steps (or when ``evaluate``) if there is a validation file."""
        start, floor = self._shape()
        expected = floor + (start - floor) * math.exp(-4.5 * step / self.total_steps)
        rng = random.Random(f"step:{self.seed}:{step}")
        loss = max(0.0, expected * (1 + rng.gauss(0, 0.12)))
        out = {"step": step, "train_loss": round(loss, 5),
               "train_mean_token_accuracy": round(self._accuracy(loss, rng), 5)}
        if self.validation and (self.evaluates(step) if evaluate is None else evaluate):
            vloss = max(0.0, expected * 1.06 * (1 + rng.gauss(0, 0.08)))
            out["valid_loss"] = round(vloss, 5)
            out["valid_mean_token_accuracy"] = round(self._accuracy(vloss, rng), 5)
        return out

    def full_validation(self, step: int) -> dict:
        """An evaluation over the whole validation file at ``step`` (at checkpoints)."""
        start, floor = self._shape()
        expected = floor + (start - floor) * math.exp(-4.5 * step / self.total_steps)
        rng = random.Random(f"full:{self.seed}:{step}")
        loss = max(0.0, expected * 1.08 * (1 + rng.gauss(0, 0.04)))
        return {"full_valid_loss": round(loss, 5),
                "full_valid_mean_token_accuracy": round(self._accuracy(loss, rng), 5)}

    def results_csv(self) -> bytes:
        """OpenAI's ``step_metrics.csv``: one row per step; validation columns are empty
        between evaluations (and always without a validation file)."""
        rows = [CSV_HEADER]
        for step in range(1, self.total_steps + 1):
            m = self.metrics(step)
            rows.append(f"{step},{m['train_loss']},{m['train_mean_token_accuracy']},"
                        f"{m.get('valid_loss', '')},{m.get('valid_mean_token_accuracy', '')}\n")
        return "".join(rows).encode()


def checkpoint_metrics(plan: Plan, step: int) -> dict:
    """A checkpoint's metrics: saving one evaluates it on the validation file, if any."""
    m = plan.metrics(step, evaluate=True)
    out = {"step": float(step), **{k: v for k, v in m.items() if k != "step"}}
    if plan.validation:
        out.update(plan.full_validation(step))
    return out
