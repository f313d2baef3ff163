"""MNIST-IDK: MNIST with an 11th class, ``IDK``, for digits no careful person can call.

The Python API behind the ``mnist-idk`` command::

    import mnist_idk
    ws = mnist_idk.Workspace.find()  # the checkout around the current directory, or the shipped releases
    result = mnist_idk.build(ws, "build/mnist_idk", version="v1.0.0")
    assert mnist_idk.validate(ws, result.out) == []

Scoring a model's predictions: ``mnist_idk.metrics.score(truth, predicted, confidence)``.
"""

from .build import BuildResult, build
from .errors import IdxError, MnistIdkError
from .validate import validate_build as validate
from .workspace import Workspace

__all__ = ["BuildResult", "IdxError", "MnistIdkError", "Workspace", "build", "validate"]
