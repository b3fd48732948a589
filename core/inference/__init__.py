"""Runtime: hand detection, tracking, the HandPoseEstimator pipeline, filters, test-time fitting."""
