"""Built-in site parsers; importing this package registers them."""
