"""Packaging beside pyproject.toml (which holds the metadata): the package list.

The OpenSearch mappings and pipelines stay top-level folders of the checkout (``mappings/``, ``pipelines/``), the
single source; they install as the subpackages ``lsr.definitions.mappings`` and ``lsr.definitions.pipelines``
(package data, read with importlib.resources), in a wheel and in an editable install alike.
"""

from setuptools import find_packages, setup

DEFINITIONS = {"lsr.definitions.mappings": "mappings", "lsr.definitions.pipelines": "pipelines"}

setup(packages=find_packages(include=["lsr", "lsr.*"]) + list(DEFINITIONS), package_dir=DEFINITIONS)
