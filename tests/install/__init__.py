"""The install matrix (`python -m tests.install`): the wheel and sdist, each extra alone in a
fresh venv with its smoke, and the unit tests on the other supported Pythons."""
