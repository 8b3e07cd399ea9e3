import RunbookEngine

/// `DependencyViolation` and "in use" refusals of the deletes of `destroy`, retried while what
/// depends on the resource goes away (for `operations.dependencyRetrySeconds`).
func dependencyRetry(_ deployment: Deployment, _ more: [String] = []) -> TransientErrors {
  TransientErrors(
    ["DependencyViolation", "InvalidIPAddress.InUse"] + more,
    seconds: Double(deployment.operations.dependencyRetrySeconds), intervalSeconds: 5)
}
