"""CloudWatch metric names and dimensions: one list, used by serving, drift and the CDK stacks."""

NAMESPACE = "ServerlessMLOps"

# Dimensions
DIM_MODEL_NAME = "ModelName"
DIM_MODEL_VERSION = "ModelVersion"
DIM_FEATURE = "Feature"
DIM_CLASS = "Class"
DIM_ERROR_KIND = "ErrorKind"
DIM_CHECK = "Check"  # a data-quality check: an Issue.check of the drift report
DIM_METRIC = "Metric"  # a model-quality metric's name: accuracy, roc_auc, rmse …
DIM_SERVICE = "service"  # Powertools adds it to every metric, from POWERTOOLS_SERVICE_NAME

# Serving
PREDICTION_LATENCY_MS = "PredictionLatency"
PREDICTIONS = "Predictions"
PREDICTIONS_BY_CLASS = "PredictionsByClass"
PREDICTION_ERRORS = "PredictionErrors"
MODEL_LOAD_FAILURES = "ModelLoadFailures"
CAPTURE_DROPPED = "CaptureRecordsDropped"
CAPTURE_SENT = "CaptureRecordsSent"
FEEDBACK_LABELS = "FeedbackLabels"  # labels POST /feedback accepted and delivered
FEEDBACK_DROPPED = "FeedbackLabelsDropped"  # accepted but not delivered to Firehose (the caller got a 503)

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

# Model quality (the scheduled check; per model version, for the latest window with data)
QUALITY_REALIZED = "RealizedMetric"  # dimension Metric: realized on the labelled predictions of the window
QUALITY_ESTIMATED = "EstimatedMetric"  # dimension Metric: estimated from calibrated probabilities (classifiers)
QUALITY_DEGRADED = "ModelQualityDegraded"  # 1 degraded, 0 ok; nothing when the labels are too few for a verdict
LABEL_COVERAGE = "LabelCoverage"  # labelled share of the window's predictions with an id, 0-1
LABEL_DELAY_HOURS = "LabelDelayHours"  # median hours from prediction to label arrival
LABELS_MATCHED = "LabelsMatched"
LABELS_UNMATCHED = "UnmatchedLabels"
LABELS_INVALID = "InvalidLabels"
# Higher-is-better, scale-free metrics: one absolute tolerance and floor fit every data set, so these are the
# ones judged (RMSE, MAE, Brier score and log loss are reported, not judged). Floors may name only these.
JUDGED_QUALITY_METRICS = ("accuracy", "f1", "f1_macro", "roc_auc", "roc_auc_ovr", "r2")
QUALITY_ALARM_THRESHOLD = 1

# Batch scoring (one datapoint per job, published by its summary step)
BATCH_ROWS = "BatchRows"
BATCH_ROW_ERRORS = "BatchRowErrors"
BATCH_DURATION = "BatchDuration"
BATCH_PARTS_FAILED = "BatchPartsFailed"

# The dataset-drift alarm: the drift check publishes DatasetDrift 1 or 0 per run, so one datapoint ≥ 1 alarms.
DRIFT_ALARM_THRESHOLD = 1
DRIFT_ALARM_STATISTIC = "Maximum"
