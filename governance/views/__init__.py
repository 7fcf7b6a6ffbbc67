"""Thin HTML views, one module per idea."""
