"""The federated-analysis benchmark (``benchmarks/federated.py``), one module per figure;
the script keeps the arguments and the order of the figures."""
