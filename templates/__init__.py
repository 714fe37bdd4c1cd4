"""Jinja templates for every target, shipped as package data."""
