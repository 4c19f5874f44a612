"""Datasets shipped with the toolkit (package data), see :mod:`mltoolkit.analysis.data`."""
