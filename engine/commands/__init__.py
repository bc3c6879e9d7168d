"""Sub-commands of ``python -m engine``; each module exposes ``register(subparsers)``."""
