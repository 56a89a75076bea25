"""The tutorial networks, each a short subclass of one shared LightningModule."""

from mnistlab.models.base import MNISTClassifier
from mnistlab.models.cnn import CNN, CNNDeep
from mnistlab.models.init import WeightInit
from mnistlab.models.mlp import MLPBatchNorm, MLPBatchNormDropout, MLPDropout, MLPSigmoid

__all__ = [
    "CNN",
    "CNNDeep",
    "MLPBatchNorm",
    "MLPBatchNormDropout",
    "MLPDropout",
    "MLPSigmoid",
    "MNISTClassifier",
    "WeightInit",
]
