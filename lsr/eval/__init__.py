"""Evaluation: metrics, TREC runs, reports, published reference numbers, plots."""
