"""Wire model of ``POST /v1/fine_tuning/jobs``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from .common import STRICT
from .vector_stores import Metadata

Auto = Literal["auto"]
BatchSize = Auto | Annotated[int, Field(ge=1, le=256)]
LearningRate = Auto | Annotated[float, Field(gt=0)]
Epochs = Auto | Annotated[int, Field(ge=1, le=50)]


class Hyperparameters(BaseModel):
    model_config = STRICT
    batch_size: BatchSize = "auto"
    learning_rate_multiplier: LearningRate = "auto"
    n_epochs: Epochs = "auto"


class DPOHyperparameters(Hyperparameters):
    beta: Auto | Annotated[float, Field(gt=0, le=2)] = "auto"


class ReinforcementHyperparameters(Hyperparameters):
    reasoning_effort: Literal["default", "low", "medium", "high"] = "default"
    compute_multiplier: Auto | Annotated[float, Field(gt=0, le=10)] = "auto"
    eval_interval: Auto | Annotated[int, Field(ge=1)] = "auto"
    eval_samples: Auto | Annotated[int, Field(ge=1)] = "auto"


class Supervised(BaseModel):
    model_config = STRICT
    hyperparameters: Hyperparameters | None = None


class DPO(BaseModel):
    model_config = STRICT
    hyperparameters: DPOHyperparameters | None = None


class Reinforcement(BaseModel):
    model_config = STRICT
    grader: dict[str, Any]
    hyperparameters: ReinforcementHyperparameters | None = None


class Method(BaseModel):
    model_config = STRICT
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: Supervised | None = None
    dpo: DPO | None = None
    reinforcement: Reinforcement | None = None


class Wandb(BaseModel):
    model_config = STRICT
    project: str
    name: str | None = None
    entity: str | None = None
    tags: list[str] | None = None


class Integration(BaseModel):
    model_config = STRICT
    type: Literal["wandb"]
    wandb: Wandb


class CreateFineTuningJobRequest(BaseModel):
    model_config = STRICT
    model: str
    training_file: str
    hyperparameters: Hyperparameters | None = None
    suffix: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    validation_file: str | None = None
    integrations: Annotated[list[Integration], Field(max_length=5)] | None = None
    seed: Annotated[int, Field(ge=0, le=2147483647)] | None = None
    method: Method | None = None
    metadata: Metadata | None = None
