"""Pooling machines: ``homefire worker`` shares a machine's backend over ggml's RPC protocol, and
a load with workers splits a model's layers across this machine and theirs."""
