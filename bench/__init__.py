"""dockyard's benchmark against the plain docker CLI; ``python bench/run.py --help`` starts there."""
