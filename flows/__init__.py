"""Prefect wiring of mltoolkit: tasks, flows and their command lines.

Importing this package is cheap; each module imports Prefect itself.
"""
