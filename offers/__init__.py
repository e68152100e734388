"""Offers: the rules that turn zone events into the right message for the right member."""
