"""Helpers of the subprocess tests (harness) and the test-only fault injector (faults/)."""
