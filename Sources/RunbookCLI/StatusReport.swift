import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook

/// The state of every step and action, from the checkpoint alone (no AWS call).
package struct StatusReport: Sendable {
  package struct ActionStatus: Codable, Sendable, Hashable {
    package var name: String
    package var kind: String
    /// `done`, `pending`, `failed`, `pending-manual` or `skipped`.
    package var status: String
    package var outcome: String?
    package var export: String?
    package var value: String?
  }

  package struct StepStatus: Codable, Sendable, Hashable {
    package var id: String
    package var section: String
    package var title: String
    /// `done`, `pending`, `partial` or `failed`.
    package var status: String
    package var actions: [ActionStatus]
  }

  package struct Document: Codable, Sendable, Hashable {
    package var schemaVersion: Int
    package var deployment: String
    package var region: String
    package var account: String?
    package var lineage: String?
    package var serial: Int
    package var updatedAt: String?
    package var steps: [StepStatus]
    package var exports: [String: String]
    package var pendingManual: [String]
    package var lastFailure: FailureRecord?
    /// The critical path of the last run that ran an action (from the run history).
    package var criticalPath: LastCriticalPath?
  }

  /// A run's critical path, with the run it belongs to.
  package struct LastCriticalPath: Codable, Sendable, Hashable {
    /// The run's id in the history (`runbook history --json`).
    package var run: String
    package var command: String
    package var endedAt: String?
    package var outcome: String?
    package var seconds: Double
    package var description: String
    package var links: [RunRecord.CriticalPath.Link]
  }

  package var document: Document

  package init(engine: Engine<Deployment>) async throws {
    let checkpoint = try await engine.loadCheckpoint()
    let failure = checkpoint?.lastFailure
    var pendingManual: [String] = []
    let steps = engine.catalogue.map { step -> StepStatus in
      let actions = step.actions(for: engine.deployment).map { action -> ActionStatus in
        let record = checkpoint?.record(step.id, action.name)
        var status = record?.status.rawValue ?? "pending"
        if record == nil, failure?.step == step.id, failure?.action == action.name {
          status = "failed"
        }
        if record?.status == .pendingManual { pendingManual.append("\(step.id)/\(action.name)") }
        let kind: String =
          switch action.effect {
          case .read: action.wait == nil ? "read" : "wait"
          case .write: "write"
          case .manual: "manual"
          }
        return ActionStatus(
          name: action.name, kind: kind, status: status, outcome: record?.outcome?.rawValue,
          export: action.capture?.export, value: record?.value)
      }
      let stepStatus: String
      if actions.contains(where: { $0.status == "failed" }) {
        stepStatus = "failed"
      } else if actions.allSatisfy({ $0.status == "done" || $0.status == "pending-manual" }) {
        stepStatus = "done"
      } else if actions.contains(where: { $0.status == "done" }) {
        stepStatus = "partial"
      } else {
        stepStatus = "pending"
      }
      return StepStatus(
        id: step.id, section: step.section, title: step.title, status: stepStatus, actions: actions)
    }
    document = Document(
      schemaVersion: 1, deployment: engine.deployment.name, region: engine.region,
      account: checkpoint?.account, lineage: checkpoint?.lineage, serial: checkpoint?.serial ?? 0,
      updatedAt: checkpoint?.updatedAt, steps: steps, exports: checkpoint?.exports ?? [:],
      pendingManual: pendingManual, lastFailure: failure)
    // The history only tells: one that cannot be read leaves the field out.
    let records = (try? await engine.state.history.records()) ?? []
    if let checkpoint,
      let last = records.last(where: {
        $0.event == .finished && $0.lineage == checkpoint.lineage && $0.criticalPath != nil
      }), let path = last.criticalPath
    {
      document.criticalPath = LastCriticalPath(
        run: last.run, command: last.command, endedAt: last.endedAt,
        outcome: last.outcome?.rawValue, seconds: path.seconds, description: path.description,
        links: path.links)
    }
  }

  package func json() -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? encoder.encode(document)) ?? Data(), as: UTF8.self) + "\n"
  }

  package func text(style: Style) -> String {
    var lines = [
      "deployment \(document.deployment) · region \(document.region) · account \(document.account ?? "(not yet known)") · serial \(document.serial)"
    ]
    // Names in full (`queue-arn-assignment-events-queue-dlq`), in one column as wide as the longest.
    let nameWidth = max(30, document.steps.flatMap(\.actions).map(\.name.count).max() ?? 0)
    for step in document.steps {
      let done = step.actions.filter { $0.status == "done" }.count
      lines.append(
        style.bold("\(step.section) \(step.id)".padding(toLength: 14, withPad: " ", startingAt: 0))
          + " \(step.status) (\(done)/\(step.actions.count))  \(step.title)")
      for action in step.actions {
        var line =
          "    " + action.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + " "
          + action.status.padding(toLength: 15, withPad: " ", startingAt: 0)
        if let outcome = action.outcome { line += " \(outcome)" }
        lines.append(line)
      }
    }
    if !document.pendingManual.isEmpty {
      lines.append(
        style.yellow("manual actions pending: ") + document.pendingManual.joined(separator: ", "))
    }
    if let failure = document.lastFailure {
      lines.append(
        style.red("last failure: ") + "\(failure.step)/\(failure.action) at \(failure.at): "
          + (failure.message.split(separator: "\n").first.map(String.init) ?? ""))
    }
    if let path = document.criticalPath {
      // The chain that set the last run's wall time, as that run printed it.
      lines.append(
        "critical path of the last run (\(path.command)\(path.endedAt.map { ", \($0)" } ?? "")): \(path.description)"
      )
    }
    lines.append("exports:")
    for (name, value) in document.exports.sorted(by: { $0.key < $1.key }) {
      lines.append("  \(name)=\(value)")
    }
    return lines.joined(separator: "\n") + "\n"
  }
}
