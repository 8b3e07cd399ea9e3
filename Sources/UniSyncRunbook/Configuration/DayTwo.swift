import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// What a run was asked for on the command line, beyond the configuration (never read from the
/// configuration file): which services `update` touches, a rollback, `verify --follow`, and the
/// choices `destroy` offers.
package struct RunRequest: Sendable, Hashable {
  /// `--service NAME`, in the order given; empty: every service.
  package var services: [String]
  /// `run update --rollback`: back to the task definition recorded before the last update.
  package var rollback: Bool
  /// `run verify --follow`: keep polling until Ctrl-C.
  package var follow: Bool
  /// `destroy --skip-final-snapshot`: delete the RDS instance without a final snapshot.
  package var skipFinalSnapshot: Bool
  /// `destroy --force-delete-without-recovery`: delete secrets at once, without a recovery window.
  package var deleteSecretsWithoutRecovery: Bool

  package init(
    services: [String] = [], rollback: Bool = false, follow: Bool = false,
    skipFinalSnapshot: Bool = false, deleteSecretsWithoutRecovery: Bool = false
  ) {
    self.services = services
    self.rollback = rollback
    self.follow = follow
    self.skipFinalSnapshot = skipFinalSnapshot
    self.deleteSecretsWithoutRecovery = deleteSecretsWithoutRecovery
  }
}

extension Deployment {
  /// Bounds and intervals of the day-two operations (`operations` in the configuration).
  package struct Operations: Sendable, Hashable {
    /// `verify`: how long it waits, in all, for a new deployment to settle (the load balancer
    /// active, each service's tasks running) and for the health URL to answer UP before it
    /// judges. On AWS a new service takes minutes to be steady; the 10 minutes are those of
    /// `aws ecs wait services-stable` (40 looks 15 s apart). A failed rollout is not waited for.
    package var healthCheckTimeoutSeconds: Int = 600
    /// `verify`: the pause between two probes, and the longest one request may take.
    package var healthCheckIntervalSeconds: Int = 5
    /// `verify`: how many recent log lines to show per service.
    package var logLines: Int = 20
    /// `verify --follow`: the pause between two rounds.
    package var followIntervalSeconds: Int = 10
    /// `update`: the pause between two looks at a rollout (`describe-services`).
    package var deploymentPollSeconds: Int = 15
    /// `destroy`: how long a delete refused with `DependencyViolation` (or "in use") is retried
    /// while what depends on it finishes deleting.
    package var dependencyRetrySeconds: Int = 900
    /// Every pause between two looks at AWS (the polls of waits and rollouts, the back-off of
    /// retries), in percent of its length: below 100 the tool looks more often, at the price of
    /// more calls. `make bench TIMING=aws`, whose AWS timings are scaled down, scales the pauses
    /// with them.
    package var pausePercent: Int = 100

    package init() {}
  }

  /// The services `update` works on: `--service` names, else all of them.
  package var requestedServices: [Service] {
    request.services.isEmpty ? services : services.filter { request.services.contains($0.name) }
  }
}
