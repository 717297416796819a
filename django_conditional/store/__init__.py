"""The version store's parts: keys, database rows, cache publication and the Redis adapter.

The public face is ``django_conditional.versions``; these modules are its private implementation.
"""
