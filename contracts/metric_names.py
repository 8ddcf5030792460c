"""CloudWatch metric names and dimensions: one list, used by serving, drift and the CDK stacks."""

NAMESPACE = "ServerlessMLOps"

# Dimensions
DIM_MODEL_NAME = "ModelName"
DIM_MODEL_VERSION = "ModelVersion"
DIM_FEATURE = "Feature"
DIM_CLASS = "Class"
DIM_ERROR_KIND = "ErrorKind"
DIM_CHECK = "Check"  # a data-quality check: an Issue.check of the drift report
DIM_SERVICE = "service"  # Powertools adds it to every metric, from POWERTOOLS_SERVICE_NAME

# Serving
PREDICTION_LATENCY_MS = "PredictionLatency"
PREDICTIONS = "Predictions"
PREDICTIONS_BY_CLASS = "PredictionsByClass"
PREDICTION_ERRORS = "PredictionErrors"
MODEL_LOAD_FAILURES = "ModelLoadFailures"
CAPTURE_DROPPED = "CaptureRecordsDropped"
CAPTURE_SENT = "CaptureRecordsSent"

# Drift
DRIFT_DATASET = "DatasetDrift"
DRIFT_SHARE = "DriftedFeatureShare"
DRIFT_FEATURE_PSI = "FeaturePSI"
DRIFT_FEATURE_FLAG = "FeatureDrift"
DRIFT_ROWS_CHECKED = "RowsChecked"
DRIFT_ROWS_REJECTED = "RowsRejected"
DRIFT_QUALITY_ISSUES = "DataQualityIssues"
DRIFT_QUALITY_BY_CHECK = "DataQualityIssuesByCheck"
DRIFT_INSUFFICIENT_DATA = "InsufficientData"

# Batch scoring (one datapoint per job, published by its summary step)
BATCH_ROWS = "BatchRows"
BATCH_ROW_ERRORS = "BatchRowErrors"
BATCH_DURATION = "BatchDuration"
BATCH_PARTS_FAILED = "BatchPartsFailed"

# The dataset-drift alarm: the drift check publishes DatasetDrift 1 or 0 per run, so one datapoint ≥ 1 alarms.
DRIFT_ALARM_THRESHOLD = 1
DRIFT_ALARM_STATISTIC = "Maximum"
