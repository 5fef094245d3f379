"""Tests of the undying SDK."""
