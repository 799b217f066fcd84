"""Small plugins the kernel's tests load through entry points (see tests/conftest.py)."""
