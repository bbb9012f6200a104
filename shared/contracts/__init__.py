"""Typed contracts for every wire format the product touches (MPS API, MPS notifications, FC trigger events)."""
