"""The version of snnconv, in a leaf module so that every room can name it without importing the package."""

__version__ = "0.1.0"
