"""``python -m mnist_idk`` is the ``mnist-idk`` command."""

from .cli import main

main(prog_name="mnist-idk")
