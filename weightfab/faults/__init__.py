"""Defects: fault injection, critical area and yield, post-fabrication trims."""
