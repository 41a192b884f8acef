"""Synthetic clips with exact face ground truth, for tests, benchmarks and the bundled sample.

Part of the installed package (its face crops are package data) so that benchmarks and users'
own tests can build clips from a wheel install, not only from a checkout.
"""
