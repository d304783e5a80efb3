"""The embedded runtime: moto server, HTTP gateway, queue dispatcher, CLI."""
