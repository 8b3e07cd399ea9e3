import Foundation
import RunbookAWS
import RunbookProcess

/// Everything a deployment has learned and finished, as kept in `<state-dir>/state.json`.
public struct Checkpoint: Codable, Sendable, Hashable {
  public static let currentFormatVersion = 1

  public var formatVersion: Int
  /// A random id fixed when the checkpoint is first written; carried in a tag by every resource.
  public var lineage: String
  /// Grows by one with every write.
  public var serial: Int
  public var deployment: String
  /// The AWS account the resources live in; pinned by the first run that asked AWS.
  public var account: String?
  public var region: String
  public var exports: [String: String]
  public var actions: [String: ActionRecord]
  public var lastFailure: FailureRecord?
  /// Exports a procedure recorded on its way (`ROLLBACK_TASK_DEF_API_GATEWAY`), by the
  /// `step/action` that recorded them, so forgetting the step forgets them too.
  public var exportOwners: [String: String]?
  public var updatedAt: String

  public init(deployment: String, region: String, lineage: String = UUID().uuidString.lowercased())
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

  /// The record of one action, by `step/action` key.
  public func record(_ step: String, _ action: String) -> ActionRecord? {
    actions["\(step)/\(action)"]
  }

  /// Forgets every action and export of a step (the resources are left alone).
  public mutating func forget(step: String) {
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
public struct ActionRecord: Codable, Sendable, Hashable {
  public enum Status: String, Codable, Sendable {
    /// Finished; never run again.
    case done
    /// A manual action the operator has not confirmed yet.
    case pendingManual = "pending-manual"
    /// The operator chose to skip it.
    case skipped
  }

  /// How a done action got done.
  public enum Outcome: String, Codable, Sendable {
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

  public var status: Status
  public var outcome: Outcome?
  /// The captured id (also stored under `export` in the exports when the action has one).
  public var value: String?
  public var export: String?
  public var finishedAt: String

  public init(status: Status, outcome: Outcome?, value: String?, export: String?) {
    self.status = status
    self.outcome = outcome
    self.value = value
    self.export = export
    finishedAt = timestamp()
  }
}

/// The last failure, kept so `status` can show it until the action succeeds.
public struct FailureRecord: Codable, Sendable, Hashable {
  public var step: String
  public var action: String
  public var message: String
  public var at: String

  public init(step: String, action: String, message: String, at: String) {
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
