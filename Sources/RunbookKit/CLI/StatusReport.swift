import Foundation

/// The state of every step and action, from the checkpoint alone (no AWS call).
public struct StatusReport: Sendable {
  public struct ActionStatus: Codable, Sendable, Hashable {
    public var name: String
    public var kind: String
    /// `done`, `pending`, `failed`, `pending-manual` or `skipped`.
    public var status: String
    public var outcome: String?
    public var export: String?
    public var value: String?
  }

  public struct StepStatus: Codable, Sendable, Hashable {
    public var id: String
    public var section: String
    public var title: String
    /// `done`, `pending`, `partial` or `failed`.
    public var status: String
    public var actions: [ActionStatus]
  }

  public struct Document: Codable, Sendable, Hashable {
    public var schemaVersion: Int
    public var deployment: String
    public var region: String
    public var account: String?
    public var lineage: String?
    public var serial: Int
    public var updatedAt: String?
    public var steps: [StepStatus]
    public var exports: [String: String]
    public var pendingManual: [String]
    public var lastFailure: FailureRecord?
  }

  public var document: Document

  public init(engine: Engine) async throws {
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
      schemaVersion: 1, deployment: engine.deployment.name, region: engine.resolver.aws.region,
      account: checkpoint?.account, lineage: checkpoint?.lineage, serial: checkpoint?.serial ?? 0,
      updatedAt: checkpoint?.updatedAt, steps: steps, exports: checkpoint?.exports ?? [:],
      pendingManual: pendingManual, lastFailure: failure)
  }

  public func json() -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? encoder.encode(document)) ?? Data(), as: UTF8.self) + "\n"
  }

  public func text(style: Style) -> String {
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
    lines.append("exports:")
    for (name, value) in document.exports.sorted(by: { $0.key < $1.key }) {
      lines.append("  \(name)=\(value)")
    }
    return lines.joined(separator: "\n") + "\n"
  }
}
