import Foundation
import RunbookProcess
import RunbookState
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// How a run behaves.
package struct RunOptions: Sendable {
  /// Never ask; run every write.
  package var assumeYes: Bool
  /// Take over existing resources found by name alone (they are never deleted by `destroy`).
  package var adopt: Bool
  /// Independent actions running at once (1 in interactive mode).
  package var jobs: Int
  /// The command line, recorded in the lock.
  package var commandLine: String
  package var retry: RetryPolicy
  /// Run the `overwrite` write of actions that have one, even when they are done: an existing
  /// secret gets this run's value (otherwise it keeps the value it has).
  package var overwriteSecrets: Bool
  /// Multiplies every pause between two looks at AWS (the polls of a wait, the back-off of a
  /// retry, a procedure's pauses); deadlines stay as they are. 1 on AWS; lower looks more often.
  package var pauseScale: Double = 1
  /// The image tag the run rolls out, for its history record (`run update --tag`).
  package var imageTag: String?
  /// `run --refresh`: done actions whose resource is missing or changed on AWS, or that today's
  /// configuration would run otherwise, run again (``RefreshPlan``).
  package var refresh = false

  package init(
    assumeYes: Bool = false, adopt: Bool = false, jobs: Int = 4, commandLine: String = "runbook",
    retry: RetryPolicy = RetryPolicy(), overwriteSecrets: Bool = false, imageTag: String? = nil
  ) {
    self.imageTag = imageTag
    self.assumeYes = assumeYes
    self.adopt = adopt
    self.overwriteSecrets = overwriteSecrets
    self.jobs = max(1, jobs)
    self.commandLine = commandLine
    self.retry = retry
  }
}

/// What the engine checks before a run creates anything, given by the runbook (the engine knows
/// no tool): the account of the credentials, programs whose service must answer, where a missing
/// program comes from.
package struct Preflight: Sendable {
  /// A program whose service must answer before anything is created, when an action still to
  /// run uses it (the Docker daemon: otherwise a stopped one shows up after the repositories exist).
  package struct ServiceCheck: Sendable {
    package var tool: String
    package var arguments: [String]
    /// The reason to show, from the last line of the check's error output and the steps' ids.
    package var failure: @Sendable (_ reason: String, _ steps: [String]) -> String
    package init(
      tool: String, arguments: [String],
      failure: @escaping @Sendable (_ reason: String, _ steps: [String]) -> String
    ) {
      self.tool = tool
      self.arguments = arguments
      self.failure = failure
    }
  }

  /// The command that prints the account of the credentials in use (pinned in the checkpoint).
  package var account: Command
  /// What the account looks like (the whole trimmed output must match).
  package var accountPattern: String
  /// What the account is called in a failure (`the AWS account of these credentials`).
  package var accountDescription: String
  package var services: [ServiceCheck]
  /// Said after a program that is not found (`runbook-health-probe`: built beside runbook).
  package var toolHints: [String: String]

  package init(
    account: Command, accountPattern: String, accountDescription: String,
    services: [ServiceCheck] = [], toolHints: [String: String] = [:]
  ) {
    self.account = account
    self.accountPattern = accountPattern
    self.accountDescription = accountDescription
    self.services = services
    self.toolHints = toolHints
  }
}

/// Bounded, jittered exponential backoff for throttling errors.
package struct RetryPolicy: Sendable {
  package var attempts: Int
  package var baseDelaySeconds: Double
  package var maxDelaySeconds: Double
  /// How long a command naming a resource created in this run is retried while the service says
  /// it does not exist yet (``OutputDialect/isNotVisibleYet(_:)``).
  package var notVisibleYetSeconds: Double
  /// The first wait of those retries; each next one doubles, up to 30 s.
  package var notVisibleYetFirstDelaySeconds: Double

  package init(
    attempts: Int = 8, baseDelaySeconds: Double = 0.5, maxDelaySeconds: Double = 20,
    notVisibleYetSeconds: Double = 300, notVisibleYetFirstDelaySeconds: Double = 1
  ) {
    self.notVisibleYetFirstDelaySeconds = notVisibleYetFirstDelaySeconds
    self.attempts = attempts
    self.baseDelaySeconds = baseDelaySeconds
    self.maxDelaySeconds = maxDelaySeconds
    self.notVisibleYetSeconds = notVisibleYetSeconds
  }

  /// The wait before retry number `attempt` of a command naming a resource the service does not
  /// see yet: exponential from the first delay, at most 30 s ("a couple of seconds up to a few
  /// minutes" in all, as EC2's eventual-consistency page advises).
  package func notVisibleYetDelay(attempt: Int) -> Double {
    min(30, notVisibleYetFirstDelaySeconds * pow(2, Double(attempt - 1)))
  }

  /// The delay before retry number `attempt` (1-based): full jitter over an exponential ceiling.
  package func delay(attempt: Int) -> Double {
    let ceiling = min(maxDelaySeconds, baseDelaySeconds * pow(2, Double(attempt - 1)))
    return Double.random(in: (ceiling / 2)...ceiling)
  }
}
