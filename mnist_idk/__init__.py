"""MNIST-IDK: MNIST with an 11th class, ``IDK``, for digits no careful person can call.

The Python API behind the ``mnist-idk`` command::

    import mnist_idk
    result = mnist_idk.build("build/mnist_idk", version="v1.0.0")
    assert mnist_idk.validate(result.out) == []

Scoring a model's predictions: ``mnist_idk.metrics.score(truth, predicted, confidence)``.
"""

from .build import BuildResult, build
from .errors import IdxError, MnistIdkError
from .validate import validate_build as validate

__all__ = ["BuildResult", "IdxError", "MnistIdkError", "build", "validate"]
