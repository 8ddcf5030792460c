"""Step Functions step handlers of the training pipeline (build the data set, validate, evaluate, register)."""
