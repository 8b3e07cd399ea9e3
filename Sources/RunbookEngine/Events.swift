import Foundation
import RunbookProcess
import RunbookState

/// What happened to an action in this run, as the operator sees it.
package enum ActionOutcome: String, Sendable, Hashable {
  case created
  case recovered
  case adopted
  case alreadyDone = "already done"
  case read
  /// A local command ran (a `docker build`, a step of the Lambda package, a registry login):
  /// its effect is on this machine, and it neither read nor changed anything on AWS.
  case ranLocally = "ran locally"
  case confirmed
  /// Existed already and got this run's value (`--overwrite-secrets`).
  case updated
  /// A teardown action deleted what the step created.
  case deleted
  /// A teardown action left its resource alone: the deployment did not create it (adopted,
  /// existing already, or never made).
  case kept
  case pendingManual = "pending (manual)"
  case skipped
  case failed
}

/// Everything the engine tells the outside world while it works. The library never prints.
package enum RunEvent: Sendable, Hashable {
  case stepStarted(step: String, section: String, title: String)
  /// A command is about to run (reads and writes alike).
  case commandStarted(step: String, action: String, command: String)
  case actionFinished(step: String, action: String, outcome: ActionOutcome, detail: String?)
  case actionFailed(step: String, action: String, message: String)
  /// A wait polled: the state it read, the time since it began, and the states it waits for.
  case waiting(
    step: String, action: String, state: String, elapsedSeconds: Double, until: [String] = [])
  case retrying(step: String, action: String, reason: String, attempt: Int, delaySeconds: Double)
  /// A manual action: what the operator must do by hand.
  case manual(step: String, action: String, instructions: String)
  /// A line of progress from a procedure (a rollout's new event, a probe's answer).
  case progress(step: String, action: String, message: String)
  case stepFinished(step: String, elapsedSeconds: Double)
  case warning(String)
  case note(String)
}

/// Receives the engine's events; the executable decides how they look.
package protocol Reporter: Sendable {
  func report(_ event: RunEvent)
}

/// The operator's answer to "run this command?".
package enum Approval: Sendable, Hashable {
  case yes
  case skip
  /// Yes to this and every later write of the same step.
  case all
  case quit
}

/// Asks the operator; given only in interactive mode.
package protocol Prompter: Sendable {
  func approve(step: String, action: String, summary: String, command: String) -> Approval
  /// Asks whether a manual action was done; false leaves it pending.
  func confirmManual(step: String, action: String, instructions: String) -> Bool
  /// Asks for a secret value without echoing it; nil when none was given.
  func secret(prompt: String) -> String?
}
