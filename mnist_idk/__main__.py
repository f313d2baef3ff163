"""``python -m mnist_idk`` is the ``mnist-idk`` command."""

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    from .cli import main

    main(prog_name="mnist-idk")
