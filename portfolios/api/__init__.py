"""Read API for portfolios and the figures a refresh stores about them."""
