"""Reads for portfolios, a module for each thing read.

prices.py: price matrices from market data's bars and quotes; holdings.py: portfolios and their
holdings; assets.py: asset ids and symbols in the orders the matrices use; strategies.py:
strategies and the signals that tilt them; read_api.py: the read API's data. matrices.py holds
what the matrix reads share.
"""
