"""Test helpers shared by every layer of the test suite."""
