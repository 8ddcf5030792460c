"""Step Functions step handlers of the training pipeline (validate, evaluate, register)."""
