"""Evaluation: metrics, TREC runs, reports, significance tests, plots. (The paper tables and the published
reference numbers are lab drivers in the checkout's `experiments/`.)"""
