import Foundation
import RunbookProcess
import RunbookState

extension Engine {
  /// Adds a record to the run history. The history only tells what happened: a record that
  /// cannot be written is a warning, never the end of a run that is changing AWS.
  func appendHistory(_ record: RunRecord) async {
    do {
      try await state.history.append(record)
    } catch {
      reporter.report(
        .warning("the run history could not be written (the run goes on): \(error)"))
    }
  }

  /// The `started` record of a run of `steps` on `checkpoint`'s lineage.
  func startedRecord(
    _ steps: [any Step<Configuration>], checkpoint: Checkpoint, audit: AuditLog
  ) -> RunRecord {
    RunRecord(
      lineage: checkpoint.lineage, command: resolver.secrets.mask(options.commandLine),
      steps: steps.map(\.id), log: audit.path, imageTag: options.imageTag)
  }

  /// This run's critical path so far, as its history record keeps it.
  var historyCriticalPath: RunRecord.CriticalPath? {
    timings.criticalPath.map { path in
      RunRecord.CriticalPath(
        links: path.links.map {
          RunRecord.CriticalPath.Link(action: $0.action, seconds: $0.seconds)
        },
        seconds: path.seconds, description: path.description)
    }
  }

  /// How a run that threw `error` ended, as the history says it.
  static func historyOutcome(of error: Error) -> RunRecord.Outcome {
    switch error {
    case is StepFailure, is HaltedBesideAFailure: .failed
    case is Interrupted: .interrupted
    case is StateConflictError, is LockHeldError: .conflict
    default: .error
    }
  }

  /// What a run changed, from the checkpoint it started from and the one it left: every record it
  /// made or changed (reads left out), and what a teardown deleted before its step was forgotten.
  static func changes(from before: Checkpoint, to after: Checkpoint) -> [RunRecord.Change] {
    var changes: [RunRecord.Change] = []
    for (key, record) in after.actions.sorted(by: { $0.key < $1.key })
    where before.actions[key] != record {
      guard record.status == .done, let outcome = record.outcome, outcome != .read else {
        continue
      }
      changes.append(
        RunRecord.Change(action: key, outcome: outcome.rawValue, value: record.value))
    }
    // A finished teardown forgets its step: what the step had made is what it deleted.
    for (key, record) in before.actions.sorted(by: { $0.key < $1.key })
    where after.actions[key] == nil
      && [.created, .recovered, .updated].contains(record.outcome)
    {
      changes.append(RunRecord.Change(action: key, outcome: "deleted", value: record.value))
    }
    return changes
  }
}
