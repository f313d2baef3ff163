"""MNIST-IDK: MNIST with an 11th class, ``IDK``, for digits no careful person can call.

The Python API behind the ``mnist-idk`` command::

    import mnist_idk
    ws = mnist_idk.Workspace.find()  # the checkout around the current directory, or the shipped releases
    result = mnist_idk.build(ws, "build/mnist_idk", version="v1.0.0")
    assert mnist_idk.validate(ws, result.out) == []

Scoring a model's predictions: ``mnist_idk.metrics.score(truth, predicted, confidence)``.
Names are imported on first use, so ``mnist-idk --help`` does not pay for numpy and pyarrow.
"""

from __future__ import annotations

from importlib import import_module

_API = {
    "BuildResult": (".build", "BuildResult"),
    "build": (".build", "build"),
    "IdxError": (".errors", "IdxError"),
    "MnistIdkError": (".errors", "MnistIdkError"),
    "validate": (".validate", "validate_build"),
    "Workspace": (".workspace", "Workspace"),
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(import_module(module, __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
