/// How the load balancer checks a task of the gateway, and how long ECS lets a new task start
/// before those checks count (`ecs.healthCheckGracePeriodSeconds`).
///
/// The defaults fit a Spring Boot service on a 0.25 vCPU Fargate task (docs/operator-guide.md,
/// "Health checks"): such a task takes one to two minutes to answer `/actuator/health`, so the
/// grace period covers that start, and once it answers, two checks 15 s apart make it healthy
/// (AWS's defaults, 5 checks 30 s apart, would keep it out of the load balancer for 2.5 minutes
/// more). Three failed checks in a row (45 s) mark it unhealthy, so one slow answer during a
/// garbage collection on a quarter of a CPU does not.
///
/// The ranges are those of `CreateTargetGroup`
/// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html):
/// interval 5-300 s, timeout 2-120 s and less than the interval, thresholds 2-10.
package struct TargetHealthCheck: Sendable, Hashable {
  static let defaultGracePeriodSeconds = 180
  static let intervalRange = 5...300
  static let timeoutRange = 2...120
  static let thresholdRange = 2...10

  /// `--health-check-interval-seconds`.
  package var intervalSeconds: Int
  /// `--health-check-timeout-seconds`.
  package var timeoutSeconds: Int
  /// `--healthy-threshold-count`.
  package var healthyThresholdCount: Int
  /// `--unhealthy-threshold-count`.
  package var unhealthyThresholdCount: Int
}

extension TargetHealthCheck {
  /// The keys of `ecs` that hold it (named as CreateTargetGroup names them).
  init(reading e: FieldReader) {
    let problemsBefore = e.problems.items.count
    self.init(
      intervalSeconds: e.int("healthCheckIntervalSeconds", default: 15, range: Self.intervalRange),
      timeoutSeconds: e.int("healthCheckTimeoutSeconds", default: 5, range: Self.timeoutRange),
      healthyThresholdCount: e.int(
        "healthyThresholdCount", default: 2, range: Self.thresholdRange),
      unhealthyThresholdCount: e.int(
        "unhealthyThresholdCount", default: 3, range: Self.thresholdRange))
    // AWS refuses a timeout that is not shorter than the interval, at create-target-group.
    // (Compared only when both were read as given: a value out of range is reported already.)
    if e.problems.items.count == problemsBefore, timeoutSeconds >= intervalSeconds {
      e.problems.add(
        e.fieldPath("healthCheckTimeoutSeconds"),
        "\(timeoutSeconds) must be less than healthCheckIntervalSeconds (\(intervalSeconds))")
    }
  }
}
