"""Bundled configs, installed as the package ``streamdeid.configs`` (see ``pyproject.toml``).

The YAML files here are package data: the library finds them with :mod:`importlib.resources`, so
``--config cctv`` works from a wheel as well as from a checkout.
"""
