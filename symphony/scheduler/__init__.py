"""Placement of work on nodes by virtual capacity. Pure."""
