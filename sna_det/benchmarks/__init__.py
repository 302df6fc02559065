"""What the benchmark tools measure (``tools/benchmark_sna.py``, ``tools/benchmark_attention.py``,
``tools/explain_graph_breaks.py``): timing (``timing``), the SNA block against the memory floor
(``block``), detectors with and without attention (``detectors``), attention types side by side
(``attention_types``), the power-iteration candidates (``power_iteration_candidates``, measured by
``algorithm``), dispatched-op counts without a GPU (``op_count``) and torch.compile graph breaks
(``graph_breaks``). Nothing here prints or parses arguments."""
