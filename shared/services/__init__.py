"""The product's use cases, one module each; they talk only to ports (`shared.ports`)."""
