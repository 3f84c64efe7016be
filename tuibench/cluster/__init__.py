"""A Ray cluster as the place a run happens (`--ray-address`): its nodes listed with the run, a telemetry agent on
every node, client workers as actors spread over it, and vLLM's own Ray executor.

Ray is an optional extra (`pip install 'tuibench[ray]'`) and is imported only here, and only in a run that names
a cluster: without `--ray-address` nothing in this package is imported.
"""
