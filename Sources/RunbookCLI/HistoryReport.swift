import Foundation
import RunbookEngine
import RunbookProcess
import RunbookState

/// `runbook history`: every run of the deployment that took the lock, newest first, from the
/// history kept with the state (so with the state in S3, everyone's runs) and, for a run killed
/// before its end was recorded, from the journal.
package struct HistoryReport: Sendable {
  /// One run (the schema is `docs/history-schema.json`).
  package struct Run: Codable, Sendable, Hashable {
    package var run: String
    package var lineage: String
    package var startedAt: String
    package var endedAt: String?
    package var durationSeconds: Double?
    package var user: String
    package var host: String
    package var pid: Int32
    package var command: String
    package var steps: [String]
    /// `succeeded`, `failed`, `interrupted`, `conflict` or `error`.
    package var outcome: String
    /// Nil for a run killed before it could record its end.
    package var exitStatus: Int32?
    /// False for a run killed before it could record its end (its changes come from the journal).
    package var endRecorded: Bool
    package var changes: [RunRecord.Change]
    package var imageTag: String?
    package var failure: String?
    package var log: String?
  }

  package struct Document: Codable, Sendable, Hashable {
    package var schemaVersion: Int
    package var deployment: String
    /// Where the history is kept (`<state-dir>` or `s3://BUCKET/PREFIX`).
    package var state: String
    /// Newest first.
    package var runs: [Run]
  }

  package var document: Document

  package init(state: any StateStore, deployment: String) async throws {
    let records = try await state.history.records()
    var started: [String: RunRecord] = [:]
    var finished: [String: RunRecord] = [:]
    for record in records {
      switch record.event {
      case .started: started[record.run] = record
      case .finished: finished[record.run] = record
      }
    }
    // A run whose `started` record was lost still has its `finished` one, which repeats it.
    let runs = Set(started.keys).union(finished.keys).compactMap { finished[$0] ?? started[$0] }
      .sorted { ($0.startedAt, $0.run) < ($1.startedAt, $1.run) }
    var shown: [Run] = []
    for (index, record) in runs.enumerated() {
      if record.event == .finished {
        shown.append(Self.run(record, changes: record.changes ?? [], ended: true))
        continue
      }
      // Killed: what the journal holds from its start to the next run's start is its work.
      let next = runs.dropFirst(index + 1).first.flatMap { parseTimestamp($0.startedAt) }
      var changes: [RunRecord.Change] = []
      if let start = parseTimestamp(record.startedAt) {
        changes = try await state.journal.results(
          lineage: record.lineage, from: start, until: next
        ).compactMap { entry in
          guard let outcome = entry.outcome, outcome != .read else { return nil }
          return RunRecord.Change(
            action: entry.action, outcome: outcome.rawValue, value: entry.value)
        }
      }
      shown.append(Self.run(record, changes: changes, ended: false))
    }
    document = Document(
      schemaVersion: 1, deployment: deployment, state: state.location, runs: shown.reversed())
  }

  private static func run(_ record: RunRecord, changes: [RunRecord.Change], ended: Bool) -> Run {
    let duration: Double? =
      if let end = record.endedAt.flatMap(parseTimestamp),
        let start = parseTimestamp(
          record.startedAt)
      {
        (end.timeIntervalSince(start) * 10).rounded() / 10
      } else { nil }
    return Run(
      run: record.run, lineage: record.lineage, startedAt: record.startedAt,
      endedAt: record.endedAt, durationSeconds: duration, user: record.user, host: record.host,
      pid: record.pid, command: record.command, steps: record.steps,
      outcome: (record.outcome ?? .interrupted).rawValue, exitStatus: record.exitStatus,
      endRecorded: ended, changes: changes, imageTag: record.imageTag, failure: record.failure,
      log: record.log)
  }

  package func json() -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? encoder.encode(document)) ?? Data(), as: UTF8.self) + "\n"
  }

  package func text(style: Style) -> String {
    guard !document.runs.isEmpty else {
      return "no run of \(document.deployment) is recorded in \(document.state)\n"
    }
    var lines: [String] = []
    for run in document.runs {
      let when = run.startedAt.prefix(19).replacingOccurrences(of: "T", with: " ") + " UTC"
      let outcome =
        run.endRecorded
        ? "\(run.outcome) (exit \(run.exitStatus.map(String.init) ?? "?"))"
        : "interrupted (killed: its end was never recorded)"
      let painted =
        switch run.outcome {
        case "succeeded": style.green(outcome)
        case "interrupted": style.yellow(outcome)
        default: style.red(outcome)
        }
      let duration = run.durationSeconds.map { String(format: "%.1fs", $0) } ?? "?"
      lines.append(style.bold(when) + "  \(painted)  \(duration)  \(run.user)@\(run.host)")
      lines.append("  \(run.command)")
      lines.append("  steps: \(run.steps.joined(separator: ", "))")
      if let tag = run.imageTag { lines.append("  image tag: \(tag)") }
      if let failure = run.failure { lines.append("  stopped by: \(failure)") }
      // One line per kind of change, in a fixed order: what was made first.
      let order = ["created", "recovered", "adopted", "updated", "deleted", "confirmed"]
      let kinds = Set(run.changes.map(\.outcome)).sorted {
        (order.firstIndex(of: $0) ?? order.count, $0) < (
          order.firstIndex(of: $1) ?? order.count, $1
        )
      }
      for kind in kinds {
        let actions = run.changes.filter { $0.outcome == kind }.map(\.action)
        lines.append("  \(kind) (\(actions.count)): \(actions.joined(separator: ", "))")
      }
      if run.changes.isEmpty { lines.append("  changed nothing") }
    }
    return lines.joined(separator: "\n") + "\n"
  }
}
