"""The "myapp" package the documentation's examples import."""
