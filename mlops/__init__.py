"""MLOps around the models: the nightly cycle, MLflow tracking, the pyfunc wrapper, the champion,
the collaborative vector tables and erasure in the model stores. Sits above ``models``."""
