"""The one Ray version for clients, images and clusters (requirements.txt pins the same; a test checks)."""

RAY_VERSION = "2.60.0"
PYTHON_VERSION = "3.11"
