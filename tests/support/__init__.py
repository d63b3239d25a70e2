"""Helpers shared by the test modules: actors, fixed instants, builders."""
