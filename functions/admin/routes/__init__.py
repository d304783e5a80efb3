"""The admin API's routes, one Router per area; handler.py includes them all."""
