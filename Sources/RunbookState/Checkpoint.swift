import Foundation
import RunbookAWS
import RunbookProcess

/// Everything a deployment has learned and finished, as kept in `<state-dir>/state.json`.
package struct Checkpoint: Codable, Sendable, Hashable {
  package static let currentFormatVersion = 1

  package var formatVersion: Int
  /// A random id fixed when the checkpoint is first written; carried in a tag by every resource.
  package var lineage: String
  /// Grows by one with every write.
  package var serial: Int
  package var deployment: String
  /// The AWS account the resources live in; pinned by the first run that asked AWS.
  package var account: String?
  package var region: String
  package var exports: [String: String]
  package var actions: [String: ActionRecord]
  package var lastFailure: FailureRecord?
  /// Exports a procedure recorded on its way (`ROLLBACK_TASK_DEF_API_GATEWAY`), by the
  /// `step/action` that recorded them, so forgetting the step forgets them too.
  package var exportOwners: [String: String]?
  package var updatedAt: String

  package init(deployment: String, region: String, lineage: String = UUID().uuidString.lowercased())
  {
    formatVersion = Self.currentFormatVersion
    self.lineage = lineage
    serial = 0
    self.deployment = deployment
    account = nil
    self.region = region
    exports = [:]
    actions = [:]
    lastFailure = nil
    updatedAt = timestamp()
  }

  /// This checkpoint as the next version of `previous` (its serial after `previous`'s, stamped
  /// now): every save writes one.
  package func succeeding(_ previous: Checkpoint) -> Checkpoint {
    var next = self
    next.serial = previous.serial + 1
    next.updatedAt = timestamp()
    return next
  }

  /// The record of one action, by `step/action` key.
  package func record(_ step: String, _ action: String) -> ActionRecord? {
    actions["\(step)/\(action)"]
  }

  /// Forgets one action's record (`step/action`), the export it captured and the exports it
  /// recorded on its way (`run --refresh` runs it again).
  package mutating func forget(action key: String) {
    if let record = actions[key], let export = record.export, exports[export] == record.value {
      exports[export] = nil
    }
    actions[key] = nil
    for (export, owner) in exportOwners ?? [:] where owner == key {
      exports[export] = nil
      exportOwners?[export] = nil
    }
    if exportOwners?.isEmpty == true { exportOwners = nil }
    if lastFailure.map({ "\($0.step)/\($0.action)" }) == key { lastFailure = nil }
  }

  /// Forgets every action and export of a step (the resources are left alone).
  package mutating func forget(step: String) {
    for (key, record) in actions where key.hasPrefix("\(step)/") {
      if let export = record.export { exports[export] = nil }
      actions[key] = nil
    }
    for (export, owner) in exportOwners ?? [:] where owner.hasPrefix("\(step)/") {
      exports[export] = nil
      exportOwners?[export] = nil
    }
    if exportOwners?.isEmpty == true { exportOwners = nil }
    if lastFailure?.step == step { lastFailure = nil }
  }
}

/// What happened to one action.
package struct ActionRecord: Codable, Sendable, Hashable {
  package enum Status: String, Codable, Sendable {
    /// Finished; never run again.
    case done
    /// A manual action the operator has not confirmed yet.
    case pendingManual = "pending-manual"
    /// The operator chose to skip it.
    case skipped
  }

  /// How a done action got done.
  package enum Outcome: String, Codable, Sendable {
    /// This tool created it now.
    case created
    /// Found by this deployment's tags after an interrupted run: created by this tool earlier.
    case recovered
    /// An existing resource taken over with `--adopt`; never deleted by `destroy`.
    case adopted
    /// AWS said it was done already (a duplicate rule, an attached gateway).
    case alreadyDone = "already-done"
    /// A read or a wait that completed.
    case read
    /// A manual action the operator confirmed.
    case confirmed
    /// It existed already and got this run's value (`--overwrite-secrets`).
    case updated
    /// A teardown action deleted it (kept until the step's teardown finishes and the step is forgotten).
    case deleted
  }

  package var status: Status
  package var outcome: Outcome?
  /// The captured id (also stored under `export` in the exports when the action has one).
  package var value: String?
  package var export: String?
  package var finishedAt: String
  /// For a write: the command the action stands for, as the configuration of the run that did
  /// it made it (exports as `<NAME>`, secrets masked), so a later run notices that today's
  /// configuration would run another one. Nil in records of earlier versions.
  package var command: String?

  package init(
    status: Status, outcome: Outcome?, value: String?, export: String?, command: String? = nil
  ) {
    self.status = status
    self.outcome = outcome
    self.value = value
    self.export = export
    self.command = command
    finishedAt = timestamp()
  }
}

/// The last failure, kept so `status` can show it until the action succeeds.
package struct FailureRecord: Codable, Sendable, Hashable {
  package var step: String
  package var action: String
  package var message: String
  package var at: String

  package init(step: String, action: String, message: String, at: String) {
    self.step = step
    self.action = action
    self.message = message
    self.at = at
  }
}

/// Now, as an ISO 8601 timestamp with milliseconds.
package func timestamp(_ date: Date = Date()) -> String {
  date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
}

/// A timestamp written by ``timestamp(_:)`` (or any ISO 8601 one), as a date.
package func parseTimestamp(_ text: String) -> Date? {
  // ``timestamp(_:)`` writes UTC without a zone designator.
  let text =
    text.hasSuffix("Z") || text.range(of: #"[+-]\d\d:?\d\d$"#, options: .regularExpression) != nil
    ? text : text + "Z"
  let formatter = ISO8601DateFormatter()
  formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
  if let date = formatter.date(from: text) { return date }
  formatter.formatOptions = [.withInternetDateTime]
  return formatter.date(from: text)
}
